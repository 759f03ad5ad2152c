//! A real S3-compatible server for the tests: `moto_server` on a free
//! loopback port, one per test process, stopped when the process ends. With
//! `CAIRN_TEST_S3_ENDPOINT` set (scripts/test.sh starts one), that server is
//! used instead. A missing moto_server is a test failure, never a skip.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The endpoint (`http://127.0.0.1:PORT`) of the test S3 server.
pub fn endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| {
        if let Ok(e) = std::env::var("CAIRN_TEST_S3_ENDPOINT") {
            return e;
        }
        let port = crate::free_port();
        let (tx, rx) = std::sync::mpsc::channel();
        // The server is tied to this thread (PR_SET_PDEATHSIG fires when the
        // spawning thread ends), so the thread lives as long as the process.
        std::thread::spawn(move || {
            let mut cmd = Command::new("moto_server");
            cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            #[allow(unsafe_code)]
            // SAFETY: prctl is async-signal-safe; it only sets the death
            // signal of the child.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                    Ok(())
                });
            }
            let child = cmd.spawn();
            let ok = child.is_ok();
            tx.send(child.map_err(|e| e.to_string())).ok();
            if ok {
                loop {
                    std::thread::park();
                }
            }
        });
        match rx.recv() {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!(
                "cannot start moto_server ({e}): the S3 tests need it; scripts/test.sh installs it with `pip install 'moto[server]'`"
            ),
            Err(_) => panic!("the moto_server starter thread died"),
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not come up on port {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        format!("http://127.0.0.1:{port}")
    })
}

/// Send one raw HTTP request to `endpoint`; returns the status code.
pub fn raw_request(endpoint: &str, method: &str, path: &str, body: &[u8]) -> u16 {
    let addr = endpoint.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// A fresh bucket on the test server.
pub fn bucket() -> String {
    let mut rng = crate::Rng::new(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            ^ u64::from(std::process::id()),
    );
    let name = format!("cairn-{:016x}", rng.next_u64());
    let status = raw_request(endpoint(), "PUT", &format!("/{name}"), b"");
    assert_eq!(status, 200, "creating bucket {name}");
    name
}

/// Environment for `cairn` against the test server (through `endpoint`,
/// which may be a fault-injecting proxy in front of it).
pub fn cairn_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("CAIRN_S3_ENDPOINT", endpoint.to_string()),
        ("CAIRN_S3_PATH_STYLE", "true".into()),
        ("CAIRN_S3_ALLOW_HTTP", "true".into()),
    ]
}

/// The keys under `prefix` in `bucket` (one ListObjectsV2 page, enough for
/// the tests' small repositories).
pub fn list_keys(endpoint: &str, bucket: &str, prefix: &str) -> Vec<String> {
    let addr = endpoint.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /{bucket}?list-type=2&prefix={prefix} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split("<Key>")
        .skip(1)
        .filter_map(|k| k.split_once("</Key>").map(|(k, _)| k.to_string()))
        .collect()
}
