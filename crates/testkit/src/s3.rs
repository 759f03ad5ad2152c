//! Real S3-compatible servers for the tests, two independent ones:
//! `moto_server` (Python) and `s3rver` (Node, from the npm registry), each
//! on a free loopback port, one per test process, stopped when the process
//! ends. With `CAIRN_TEST_S3_ENDPOINT` / `CAIRN_TEST_S3RVER_ENDPOINT` set
//! (scripts/test.sh starts both), those servers are used instead. A missing
//! server is a test failure, never a skip.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Which test server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// moto_server, from PyPI.
    Moto,
    /// s3rver 3.7, from the npm registry.
    S3rver,
}

impl Server {
    /// For messages.
    pub fn name(self) -> &'static str {
        match self {
            Server::Moto => "moto",
            Server::S3rver => "s3rver",
        }
    }

    /// Its endpoint, `http://127.0.0.1:PORT`.
    pub fn endpoint(self) -> &'static str {
        match self {
            Server::Moto => endpoint(),
            Server::S3rver => s3rver_endpoint(),
        }
    }

    /// A fresh bucket on it.
    pub fn bucket(self) -> String {
        bucket_on(self.endpoint())
    }

    /// Its credentials (s3rver knows only its own).
    pub fn credentials(self) -> (&'static str, &'static str) {
        match self {
            Server::Moto => ("test", "test"),
            Server::S3rver => ("S3RVER", "S3RVER"),
        }
    }

    /// Environment for `cairn` against it (through `endpoint`, which may be
    /// a fault-injecting proxy in front of it).
    pub fn cairn_env(self, endpoint: &str) -> Vec<(&'static str, String)> {
        let (id, secret) = self.credentials();
        vec![
            ("AWS_ACCESS_KEY_ID", id.into()),
            ("AWS_SECRET_ACCESS_KEY", secret.into()),
            ("CAIRN_S3_ENDPOINT", endpoint.to_string()),
            ("CAIRN_S3_PATH_STYLE", "true".into()),
            ("CAIRN_S3_ALLOW_HTTP", "true".into()),
        ]
    }
}

/// Start `cmd` (a server listening on `port`), tied to a thread that lives
/// as long as the process, and wait until it accepts connections.
fn start_server(what: &str, how_to_install: &str, port: u16, mut cmd: Command) {
    let (tx, rx) = std::sync::mpsc::channel();
    let what_owned = what.to_string();
    // The server is tied to this thread (PR_SET_PDEATHSIG fires when the
    // spawning thread ends), so the thread lives as long as the process.
    std::thread::spawn(move || {
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
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
        Ok(Err(e)) => {
            panic!("cannot start {what_owned} ({e}): the S3 tests need it; {how_to_install}")
        }
        Err(_) => panic!("the {what_owned} starter thread died"),
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not come up on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The endpoint of the test s3rver.
pub fn s3rver_endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    static DATA: OnceLock<tempfile::TempDir> = OnceLock::new();
    ENDPOINT.get_or_init(|| {
        if let Ok(e) = std::env::var("CAIRN_TEST_S3RVER_ENDPOINT") {
            return e;
        }
        let bin = std::env::var_os("CAIRN_TEST_S3RVER")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| {
                    std::path::Path::new(&h).join(".cache/cairn-tools/node_modules/.bin/s3rver")
                })
            })
            .filter(|p| p.exists())
            .unwrap_or_else(|| "s3rver".into());
        let data = DATA.get_or_init(|| tempfile::tempdir().unwrap());
        let port = crate::free_port();
        let mut cmd = Command::new(bin);
        // s3rver 3.7 makes its continuation tokens with a cipher that the
        // OpenSSL 3 of Node 18+ only offers through the legacy provider:
        // without it, listing past 1000 keys fails with a 500.
        cmd.env("NODE_OPTIONS", "--openssl-legacy-provider");
        cmd.arg("-d").arg(data.path()).args([
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "--silent",
        ]);
        start_server(
            "s3rver",
            "scripts/test.sh installs it with `npm install s3rver@3.7` into ~/.cache/cairn-tools",
            port,
            cmd,
        );
        format!("http://127.0.0.1:{port}")
    })
}

/// The endpoint (`http://127.0.0.1:PORT`) of the test S3 server (moto).
pub fn endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| {
        if let Ok(e) = std::env::var("CAIRN_TEST_S3_ENDPOINT") {
            return e;
        }
        let port = crate::free_port();
        let mut cmd = Command::new("moto_server");
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        start_server(
            "moto_server",
            "scripts/test.sh installs it with `pip install 'moto[server]'`",
            port,
            cmd,
        );
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

/// A fresh bucket on the test server (moto).
pub fn bucket() -> String {
    bucket_on(endpoint())
}

/// A fresh bucket on the server at `endpoint`.
pub fn bucket_on(endpoint: &str) -> String {
    let mut rng = crate::trees::Rng::new(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            ^ u64::from(std::process::id()),
    );
    let name = format!("cairn-{:016x}", rng.next_u64());
    let status = raw_request(endpoint, "PUT", &format!("/{name}"), b"");
    assert_eq!(status, 200, "creating bucket {name}");
    name
}

/// Environment for `cairn` against the test server, moto (through
/// `endpoint`, which may be a fault-injecting proxy in front of it).
pub fn cairn_env(endpoint: &str) -> Vec<(&'static str, String)> {
    Server::Moto.cairn_env(endpoint)
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
