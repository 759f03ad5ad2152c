//! A fault-injecting HTTP proxy for the S3 tests. It forwards each request
//! to the upstream server on a fresh connection (`Connection: close`), and,
//! by a plan, answers 500 or 503 SlowDown instead, drops the connection,
//! stalls before forwarding, truncates the body of an upload while passing
//! the server's "200 OK" through (the "stored truncated" case), flips a byte
//! in what a download returns (a bad read), or leaves keys out of object
//! listings (an eventually consistent or faulty server), or refuses what a
//! backup host's create-only, no-delete credentials may not do. It counts the
//! requests it sees by kind (listings, reads, writes, deletes), so a test
//! can bound what one command costs a server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

/// Which requests to disturb (counted from 1, over all requests).
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    /// Answer 503 SlowDown to every Nth request.
    pub slowdown_every: Option<u32>,
    /// Answer 500 to every Nth request.
    pub error_every: Option<u32>,
    /// Close the connection without answering every Nth request.
    pub drop_every: Option<u32>,
    /// Wait this long before forwarding every Nth request.
    pub stall_every: Option<(u32, Duration)>,
    /// Truncate the body of the Nth PUT larger than 1 KiB, and only that one.
    pub truncate_put: Option<u32>,
    /// Flip one byte of the body of the Nth GET (from 1) whose path contains
    /// the string, and only that one; the stored object is untouched.
    pub corrupt_get: Option<(String, u32)>,
    /// Leave out of every object listing the keys that contain any of these.
    pub hide_in_list: Vec<String>,
    /// A backup host's credentials: answer 403 AccessDenied to every
    /// DELETE (and multi-object delete), to a PUT or multipart completion
    /// without `If-None-Match: *` and to a copy, as a bucket policy that
    /// denies `s3:DeleteObject` and requires `s3:if-none-match` does; a
    /// create-only PUT of a key that exists is answered 412 by the proxy
    /// itself, whatever the server behind it does with the header.
    pub create_only: bool,
}

/// Requests forwarded or answered so far, by kind.
#[derive(Debug, Default)]
pub struct RequestCounts {
    /// Object listings (GET with `list-type=`).
    pub list: AtomicU32,
    /// Other GETs (object reads).
    pub get: AtomicU32,
    /// HEADs.
    pub head: AtomicU32,
    /// PUTs.
    pub put: AtomicU32,
    /// DELETEs (and multi-object delete POSTs).
    pub delete: AtomicU32,
    /// Anything else.
    pub other: AtomicU32,
}

/// A copy of [`RequestCounts`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Listings.
    pub list: u32,
    /// Object reads.
    pub get: u32,
    /// HEADs.
    pub head: u32,
    /// PUTs.
    pub put: u32,
    /// Deletes.
    pub delete: u32,
    /// Others.
    pub other: u32,
}

impl Counts {
    /// Every request.
    pub fn total(&self) -> u32 {
        self.list + self.get + self.head + self.put + self.delete + self.other
    }
}

impl RequestCounts {
    /// The counts now.
    pub fn now(&self) -> Counts {
        Counts {
            list: self.list.load(Ordering::SeqCst),
            get: self.get.load(Ordering::SeqCst),
            head: self.head.load(Ordering::SeqCst),
            put: self.put.load(Ordering::SeqCst),
            delete: self.delete.load(Ordering::SeqCst),
            other: self.other.load(Ordering::SeqCst),
        }
    }

    fn count(&self, request_line: &str) {
        let which = match request_line.split(' ').next().unwrap_or_default() {
            "GET" if request_line.contains("list-type=") => &self.list,
            "GET" => &self.get,
            "HEAD" => &self.head,
            "PUT" => &self.put,
            "DELETE" => &self.delete,
            "POST" if request_line.contains("?delete") => &self.delete,
            _ => &self.other,
        };
        which.fetch_add(1, Ordering::SeqCst);
    }
}

/// A running proxy.
#[derive(Debug)]
pub struct FaultProxy {
    /// Its endpoint, `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Requests disturbed so far.
    pub faults: Arc<AtomicU32>,
    /// Requests seen so far, by kind.
    pub counts: Arc<RequestCounts>,
    stop: Arc<AtomicBool>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn every(n: Option<u32>, i: u32) -> bool {
    n.is_some_and(|n| n > 0 && i.is_multiple_of(n))
}

impl FaultProxy {
    /// Start a proxy in front of `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str, plan: FaultPlan) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_string();
        let faults = Arc::new(AtomicU32::new(0));
        let counts = Arc::new(RequestCounts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let counter = Arc::new(AtomicU32::new(0));
        let puts = Arc::new(AtomicU32::new(0));
        let gets = Arc::new(AtomicU32::new(0));
        {
            let (faults, stop, counts) = (faults.clone(), stop.clone(), counts.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (plan, upstream, faults) = (plan.clone(), upstream.clone(), faults.clone());
                    let counters = Counters {
                        all: counter.clone(),
                        puts: puts.clone(),
                        gets: gets.clone(),
                        faults,
                        counts: counts.clone(),
                    };
                    std::thread::spawn(move || {
                        let _ = handle(conn, &upstream, &plan, &counters);
                    });
                }
            });
        }
        Self {
            endpoint,
            faults,
            counts,
            stop,
        }
    }
}

struct Counters {
    all: Arc<AtomicU32>,
    puts: Arc<AtomicU32>,
    gets: Arc<AtomicU32>,
    faults: Arc<AtomicU32>,
    counts: Arc<RequestCounts>,
}

/// Remove the `<Contents>` entries whose key contains one of `hide` from a
/// ListObjects response body.
fn hide_keys(body: &[u8], hide: &[String]) -> Vec<u8> {
    let text = String::from_utf8_lossy(body);
    let mut out = String::with_capacity(text.len());
    let mut rest: &str = &text;
    while let Some(start) = rest.find("<Contents>") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find("</Contents>") else {
            break;
        };
        let end = start + len + "</Contents>".len();
        let entry = &rest[start..end];
        if !hide.iter().any(|h| entry.contains(h.as_str())) {
            out.push_str(entry);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out.into_bytes()
}

fn handle(
    client: TcpStream,
    upstream: &str,
    plan: &FaultPlan,
    counters: &Counters,
) -> std::io::Result<()> {
    let Counters {
        all: counter,
        puts,
        gets,
        faults,
        counts,
    } = counters;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    {
        // Request line and headers.
        let mut head = Vec::new();
        let mut length = 0usize;
        let mut chunked = false;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            }
            if lower.starts_with("connection:") {
                continue;
            }
            if line == "\r\n" {
                break;
            }
            head.push(line);
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body)?;
        if chunked {
            // Keep the raw chunked body as it is.
            loop {
                let mut line = String::new();
                reader.read_line(&mut line)?;
                body.extend_from_slice(line.as_bytes());
                let size = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
                let mut chunk = vec![0u8; size + 2];
                reader.read_exact(&mut chunk)?;
                body.extend_from_slice(&chunk);
                if size == 0 {
                    break;
                }
            }
        }
        let i = counter.fetch_add(1, Ordering::SeqCst) + 1;
        let is_put = head.first().is_some_and(|l| l.starts_with("PUT "));
        let request_line = head.first().cloned().unwrap_or_default();
        counts.count(&request_line);
        let is_get = request_line.starts_with("GET ");
        let is_list = is_get && request_line.contains("list-type=");
        let mut corrupt = false;
        if let Some((part, n)) = &plan.corrupt_get
            && is_get
            && !is_list
            && request_line.contains(part.as_str())
        {
            corrupt = gets.fetch_add(1, Ordering::SeqCst) + 1 == *n;
        }
        let mut truncate = false;
        if is_put && length > 1024 {
            let n = puts.fetch_add(1, Ordering::SeqCst) + 1;
            truncate = plan.truncate_put == Some(n);
        }
        let error = |status: &str, code: &str| {
            let body = format!(
                "<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>injected</Message></Error>"
            );
            format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        };
        if plan.create_only {
            match create_only_verdict(&request_line, &head, upstream) {
                Verdict::Forward => {}
                Verdict::Refuse => {
                    faults.fetch_add(1, Ordering::SeqCst);
                    client.write_all(error("403 Forbidden", "AccessDenied").as_bytes())?;
                    return Ok(());
                }
                Verdict::Exists => {
                    client.write_all(
                        error("412 Precondition Failed", "PreconditionFailed").as_bytes(),
                    )?;
                    return Ok(());
                }
            }
        }
        if every(plan.drop_every, i) {
            faults.fetch_add(1, Ordering::SeqCst);
            return Ok(());
        }
        if every(plan.slowdown_every, i) {
            faults.fetch_add(1, Ordering::SeqCst);
            client.write_all(error("503 Slow Down", "SlowDown").as_bytes())?;
            return Ok(());
        }
        if every(plan.error_every, i) {
            faults.fetch_add(1, Ordering::SeqCst);
            client.write_all(error("500 Internal Server Error", "InternalError").as_bytes())?;
            return Ok(());
        }
        if let Some((n, pause)) = plan.stall_every
            && every(Some(n), i)
        {
            faults.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(pause);
        }
        let mut up = TcpStream::connect(upstream)?;
        let mut out = String::new();
        let sent = if truncate {
            faults.fetch_add(1, Ordering::SeqCst);
            &body[..body.len() / 2]
        } else {
            &body[..]
        };
        for line in &head {
            if truncate && line.to_ascii_lowercase().starts_with("content-length:") {
                out.push_str(&format!("Content-Length: {}\r\n", sent.len()));
            } else {
                out.push_str(line);
            }
        }
        out.push_str("Connection: close\r\n\r\n");
        up.write_all(out.as_bytes())?;
        up.write_all(sent)?;
        let mut response = Vec::new();
        up.read_to_end(&mut response)?;
        // The connection ends here: say so, whatever the server said.
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(response.len(), |p| p + 2);
        let (head, rest) = response.split_at(split);
        let head = String::from_utf8_lossy(head);
        // The body after the blank line.
        let mut body = rest.get(2..).unwrap_or_default().to_vec();
        let mut rewritten = false;
        if is_list && !plan.hide_in_list.is_empty() {
            let hidden = hide_keys(&body, &plan.hide_in_list);
            if hidden.len() != body.len() {
                faults.fetch_add(1, Ordering::SeqCst);
                rewritten = true;
            }
            body = hidden;
        }
        if corrupt && head.starts_with("HTTP/1.1 2") && !body.is_empty() {
            faults.fetch_add(1, Ordering::SeqCst);
            let middle = body.len() / 2;
            body[middle] ^= 0x40;
        }
        let mut out = String::new();
        for line in head.split_inclusive("\r\n") {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("connection:")
                || (rewritten && lower.starts_with("content-length:"))
            {
                continue;
            }
            out.push_str(line);
        }
        if rewritten {
            out.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        out.push_str("Connection: close\r\n\r\n");
        client.write_all(out.as_bytes())?;
        client.write_all(&body)?;
    }
    Ok(())
}

/// What a create-only, no-delete policy does with a request.
enum Verdict {
    Forward,
    Refuse,
    Exists,
}

fn create_only_verdict(request_line: &str, head: &[String], upstream: &str) -> Verdict {
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    let header = |name: &str| {
        head.iter().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let create_only = header("if-none-match").is_some_and(|v| v == "*");
    match method {
        "DELETE" => Verdict::Refuse,
        "POST" if target.contains("?delete") => Verdict::Refuse,
        // Completing a multipart upload writes the object.
        "POST" if target.contains("uploadId=") && !create_only => Verdict::Refuse,
        "PUT" if header("x-amz-copy-source").is_some() => Verdict::Refuse,
        // A part is not an object yet.
        "PUT" if target.contains("partNumber=") => Verdict::Forward,
        "PUT" if !create_only => Verdict::Refuse,
        "PUT" if object_exists(upstream, target.split('?').next().unwrap_or(target)) => {
            Verdict::Exists
        }
        _ => Verdict::Forward,
    }
}

/// Whether the server holds `path` (an unsigned HEAD: the test servers do
/// not check signatures).
fn object_exists(upstream: &str, path: &str) -> bool {
    let Ok(mut up) = TcpStream::connect(upstream) else {
        return false;
    };
    let request = format!("HEAD {path} HTTP/1.1\r\nHost: {upstream}\r\nConnection: close\r\n\r\n");
    if up.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut status = String::new();
    let _ = BufReader::new(up).read_line(&mut status);
    status.split(' ').nth(1) == Some("200")
}
