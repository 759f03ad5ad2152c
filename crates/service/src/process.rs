//! Child processes: hooks, notification commands and the cairn commands a
//! job runs. Each child gets its own process group, so that stopping it
//! (on cancel, shutdown or timeout) reaches what it started too.

use rustix::process::{Pid, Signal};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// Lines of output kept for messages.
const TAIL_LINES: usize = 15;

/// Grace between SIGTERM and SIGKILL for a child that overran its time.
const KILL_GRACE: Duration = Duration::from_secs(10);

/// The process group of the child running now, so another thread can
/// signal it.
#[derive(Debug, Default)]
pub struct ChildSlot(Mutex<Option<i32>>);

impl ChildSlot {
    fn set(&self, pgid: Option<i32>) {
        if let Ok(mut g) = self.0.lock() {
            *g = pgid;
        }
    }

    /// Send SIGTERM to the running child's process group, if any.
    pub fn terminate(&self) {
        if let Ok(g) = self.0.lock()
            && let Some(pgid) = *g
        {
            signal_group(pgid, Signal::TERM);
        }
    }
}

fn signal_group(pgid: i32, sig: Signal) {
    // Never group 1 (init's) or a nonsense id.
    if let Some(pid) = Pid::from_raw(pgid).filter(|_| pgid > 1) {
        // ESRCH (the group already ended) is what we wanted anyway.
        let _ = rustix::process::kill_process_group(pid, sig);
    }
}

/// How a child ended.
#[derive(Debug)]
pub struct Finished {
    /// Its exit status.
    pub status: ExitStatus,
    /// The last lines of its standard error (and, for hooks and
    /// notification commands, standard output).
    pub output: String,
}

/// How a cairn command ended: its standard output too.
#[derive(Debug)]
pub struct Captured {
    /// Exit status.
    pub status: ExitStatus,
    /// All of standard output.
    pub stdout: String,
    /// The last lines of standard error.
    pub stderr_tail: String,
    /// Whether it was stopped for running too long.
    pub timed_out: bool,
}

/// Run `cmd` with `input` on its standard input, for at most `timeout`
/// (then SIGTERM, then SIGKILL); standard output and error merged into
/// the tail.
pub fn run_with_timeout(
    mut cmd: Command,
    input: Option<&[u8]>,
    timeout: Duration,
    slot: Option<&ChildSlot>,
) -> std::io::Result<Finished> {
    cmd.stdout(Stdio::piped());
    let captured = capture(cmd, input, Some(timeout), slot, &mut |_| {})?;
    let mut output = captured.stdout;
    output.push('\n');
    output.push_str(&captured.stderr_tail);
    let output = tail(&output);
    if captured.timed_out {
        return Ok(Finished {
            status: captured.status,
            output: format!("stopped after {}s; {output}", timeout.as_secs()),
        });
    }
    Ok(Finished {
        status: captured.status,
        output,
    })
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}

/// Run `cmd`, feeding `input`, collecting standard output, handing each
/// standard-error line to `on_line` and keeping the last ones.
pub fn capture(
    mut cmd: Command,
    input: Option<&[u8]>,
    timeout: Option<Duration>,
    slot: Option<&ChildSlot>,
    on_line: &mut dyn FnMut(&str),
) -> std::io::Result<Captured> {
    cmd.process_group(0)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let pgid = i32::try_from(child.id()).unwrap_or(0);
    if let Some(s) = slot {
        s.set(Some(pgid));
    }
    if let (Some(mut stdin), Some(bytes)) = (child.stdin.take(), input) {
        let bytes = bytes.to_vec();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        });
    }
    let mut stdout = child.stdout.take();
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = stdout.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        s
    });
    let (tx, rx) = channel::<String>();
    if let Some(err) = child.stderr.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut kept: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    let mut timed_out = false;
    let mut killed_at: Option<Instant> = None;
    loop {
        let wait = match (deadline, killed_at) {
            (_, Some(k)) => (k + KILL_GRACE).saturating_duration_since(Instant::now()),
            (Some(d), None) => d.saturating_duration_since(Instant::now()),
            (None, None) => Duration::from_secs(3600),
        };
        match rx.recv_timeout(wait.max(Duration::from_millis(1))) {
            Ok(line) => {
                on_line(&line);
                if !cairn_protocol::ProgressLine::is_progress(&line) {
                    kept.push_back(line);
                    if kept.len() > TAIL_LINES {
                        kept.pop_front();
                    }
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                if killed_at.is_some() {
                    signal_group(pgid, Signal::KILL);
                    break;
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    timed_out = true;
                    signal_group(pgid, Signal::TERM);
                    killed_at = Some(Instant::now());
                }
            }
        }
    }
    let status = child.wait()?;
    if let Some(s) = slot {
        s.set(None);
    }
    let stdout = out_thread.join().unwrap_or_default();
    Ok(Captured {
        status,
        stdout,
        stderr_tail: kept.into_iter().collect::<Vec<_>>().join("\n"),
        timed_out,
    })
}
