//! How `cairn queue` and `cairn service run-now` reach the queue.
//!
//! While the service runs, it serves a Unix socket at
//! `<state-dir>/control.sock` (mode 0600 in a 0700 directory, so only the
//! service's user can use it). A request is one JSON line, the answer is
//! one JSON line:
//!
//! ```text
//! {"op":"list"}                  -> {"ok":true,"items":[...]}
//! {"op":"cancel","id":7}         -> {"ok":true,"item":{...}}
//! {"op":"clear"}                 -> {"ok":true,"items":[...]}
//! {"op":"run-now","job":"mail"}  -> {"ok":true,"item":{...}}
//! {"op":"status"}                -> {"ok":true,"jobs":[...]}
//! any failure                    -> {"ok":false,"error":"..."}
//! ```
//!
//! When no service runs (no socket, or nobody listening), the commands
//! open the redb state directly: pending items can be listed, queued and
//! cancelled, and the service picks them up when it starts. The state
//! file can be open in one process only, so the two paths never race.

use crate::config::Config;
use crate::core::{Core, ServiceError, SystemClock};
use crate::notify::{Event, Notifier};
use crate::queue::{QueueItem, Reason};
use crate::runner::{Executor, JobContext, JobResult};
use crate::state::{State, StateError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The socket's file name in the state directory.
pub const SOCKET: &str = "control.sock";

/// Longest request line accepted.
const MAX_REQUEST: u64 = 64 << 10;

/// A request to the service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Every queue item.
    List,
    /// Cancel or stop one item.
    Cancel {
        /// The item.
        id: u64,
    },
    /// Cancel every pending item and stop the running one.
    Clear,
    /// Queue a job now.
    RunNow {
        /// The job.
        job: String,
    },
    /// Every job's schedule state.
    Status,
}

fn answer(core: &Core, req: &Request) -> Result<Value, ServiceError> {
    Ok(match req {
        Request::List => json!({ "items": core.list()? }),
        Request::Cancel { id } => json!({ "item": core.cancel(*id)? }),
        Request::Clear => json!({ "items": core.clear()? }),
        Request::RunNow { job } => json!({ "item": core.enqueue(job, Reason::Manual)? }),
        Request::Status => json!({ "jobs": core.status()? }),
    })
}

fn handle(core: &Core, stream: UnixStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut line = String::new();
    BufReader::new(std::io::Read::take(&stream, MAX_REQUEST)).read_line(&mut line)?;
    if line.is_empty() {
        // A client checking that the service listens.
        return Ok(());
    }
    let reply = match serde_json::from_str::<Request>(line.trim()) {
        Ok(req) => match answer(core, &req) {
            Ok(mut v) => {
                v["ok"] = json!(true);
                v
            }
            Err(e) => json!({ "ok": false, "error": e.to_string() }),
        },
        Err(e) => json!({ "ok": false, "error": format!("bad request: {e}") }),
    };
    let mut out = serde_json::to_vec(&reply).map_err(std::io::Error::other)?;
    out.push(b'\n');
    (&stream).write_all(&out)
}

/// Bind the control socket and answer requests on a thread of its own.
/// Returns the socket's path.
pub fn serve(core: Arc<Core>, state_dir: &Path) -> Result<PathBuf, ServiceError> {
    use std::os::unix::fs::PermissionsExt;
    let path = state_dir.join(SOCKET);
    let err = |message: String| ServiceError::Control {
        path: path.clone(),
        message,
    };
    // The caller holds the state file, so no other service uses this
    // socket: a file left here is stale.
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(format!("removing a stale socket: {e}"))),
    }
    let listener = UnixListener::bind(&path).map_err(|e| err(e.to_string()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| err(format!("setting its mode: {e}")))?;
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(s) => {
                        if let Err(e) = handle(&core, s) {
                            tracing::warn!("control request: {e}");
                        }
                    }
                    Err(e) => tracing::warn!("control socket: {e}"),
                }
            }
        })
        .map_err(|e| err(format!("starting its thread: {e}")))?;
    Ok(path)
}

/// An executor for the offline path: it never runs anything (the offline
/// path only queues and cancels).
#[derive(Debug)]
struct Idle;

impl Executor for Idle {
    fn run(&self, _: &Config, _: &str, _: crate::JobRef<'_>, _: &JobContext<'_>) -> JobResult {
        JobResult {
            message: "not run: no service".into(),
            ..JobResult::default()
        }
    }
}

impl Notifier for Idle {
    fn notify(&self, _: &Event) {}
}

/// The way to the queue.
#[derive(Debug)]
pub enum Control {
    /// Through the running service's socket.
    Socket(PathBuf),
    /// Straight in the state (no service runs).
    State(Box<Core>),
}

impl Control {
    /// Reach the queue of the service `config` describes.
    pub fn open(config: &Config) -> Result<Control, ServiceError> {
        Control::open_with(config, State::open)
    }

    /// As [`Control::open`] for commands that only read (`status`): with no
    /// service running and no state yet, nothing is created on disk.
    pub fn open_for_reading(config: &Config) -> Result<Control, ServiceError> {
        Control::open_with(config, State::open_for_reading)
    }

    fn open_with(
        config: &Config,
        open_state: fn(&Path) -> Result<State, StateError>,
    ) -> Result<Control, ServiceError> {
        let path = config.state_dir.join(SOCKET);
        match UnixStream::connect(&path) {
            Ok(_) => return Ok(Control::Socket(path)),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) => {}
            Err(e) => {
                return Err(ServiceError::Control {
                    path,
                    message: e.to_string(),
                });
            }
        }
        let state = match open_state(&config.state_dir) {
            Ok(s) => s,
            Err(StateError::InUse(p)) => {
                return Err(ServiceError::Remote(format!(
                    "{} is held by another process, but its control socket {} does not answer; \
                     is a service starting or stopping? Try again.",
                    p.display(),
                    path.display()
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let core = Core::new(
            config.clone(),
            state,
            Arc::new(Idle),
            Arc::new(Idle),
            Arc::new(SystemClock),
        )?;
        Ok(Control::State(Box::new(core)))
    }

    /// Which path is used, for `--json`: `service` or `state`.
    pub fn via_token(&self) -> &'static str {
        match self {
            Control::Socket(_) => "service",
            Control::State(_) => "state",
        }
    }

    /// Which path is used, for messages.
    pub fn via(&self) -> &'static str {
        match self {
            Control::Socket(_) => "the running service",
            Control::State(_) => "the state file (no service is running)",
        }
    }

    fn request(path: &Path, req: &Request) -> Result<Value, ServiceError> {
        let err = |message: String| ServiceError::Control {
            path: path.to_path_buf(),
            message,
        };
        let stream = UnixStream::connect(path).map_err(|e| err(e.to_string()))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| err(e.to_string()))?;
        let mut line = serde_json::to_vec(req).map_err(|e| err(e.to_string()))?;
        line.push(b'\n');
        (&stream).write_all(&line).map_err(|e| err(e.to_string()))?;
        let mut reply = String::new();
        BufReader::new(&stream)
            .read_line(&mut reply)
            .map_err(|e| err(e.to_string()))?;
        let v: Value = serde_json::from_str(reply.trim())
            .map_err(|e| err(format!("unreadable answer: {e}")))?;
        if v["ok"] == json!(true) {
            Ok(v)
        } else {
            Err(ServiceError::Remote(
                v["error"]
                    .as_str()
                    .unwrap_or("the service refused")
                    .to_string(),
            ))
        }
    }

    fn items(v: &Value, key: &str) -> Result<Vec<QueueItem>, ServiceError> {
        serde_json::from_value(v[key].clone())
            .map_err(|e| ServiceError::Remote(format!("unreadable answer: {e}")))
    }

    fn item(v: &Value) -> Result<QueueItem, ServiceError> {
        serde_json::from_value(v["item"].clone())
            .map_err(|e| ServiceError::Remote(format!("unreadable answer: {e}")))
    }

    /// Every queue item, oldest first.
    pub fn list(&self) -> Result<Vec<QueueItem>, ServiceError> {
        match self {
            Control::Socket(p) => Self::items(&Self::request(p, &Request::List)?, "items"),
            Control::State(core) => core.list(),
        }
    }

    /// Cancel a pending item or stop the running one.
    pub fn cancel(&self, id: u64) -> Result<QueueItem, ServiceError> {
        match self {
            Control::Socket(p) => Self::item(&Self::request(p, &Request::Cancel { id })?),
            Control::State(core) => core.cancel(id),
        }
    }

    /// Cancel every pending item and stop the running one.
    pub fn clear(&self) -> Result<Vec<QueueItem>, ServiceError> {
        match self {
            Control::Socket(p) => Self::items(&Self::request(p, &Request::Clear)?, "items"),
            Control::State(core) => core.clear(),
        }
    }

    /// Every job's schedule state.
    pub fn status(&self) -> Result<Vec<crate::core::JobStatus>, ServiceError> {
        match self {
            Control::Socket(p) => {
                let v = Self::request(p, &Request::Status)?;
                serde_json::from_value(v["jobs"].clone())
                    .map_err(|e| ServiceError::Remote(format!("unreadable answer: {e}")))
            }
            Control::State(core) => core.status(),
        }
    }

    /// Queue a job now.
    pub fn run_now(&self, job: &str) -> Result<QueueItem, ServiceError> {
        match self {
            Control::Socket(p) => Self::item(&Self::request(
                p,
                &Request::RunNow {
                    job: job.to_string(),
                },
            )?),
            Control::State(core) => core.enqueue(job, Reason::Manual),
        }
    }
}
