//! Progress bars (indicatif) on stderr when it is a terminal; warnings on
//! stderr always (`--quiet` keeps them: they say what a snapshot lacks).

use cairn_repository::{FileChange, Progress};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// The CLI's progress reporter.
#[derive(Debug)]
pub struct CliProgress {
    bar: Option<ProgressBar>,
    /// `-v`: list new and modified files; `-vv`: unchanged ones too.
    list_files: u8,
    files: AtomicU64,
    machine: Option<Machine>,
}

/// Progress as JSON lines on stderr, for a supervising process (the
/// service): [`cairn_protocol::ProgressLine`], at most twice a second and at
/// every phase change. Enabled by `CAIRN_PROGRESS=json`.
#[derive(Debug)]
struct Machine {
    phase: std::sync::Mutex<(String, Option<u64>)>,
    bytes: AtomicU64,
    last: std::sync::Mutex<std::time::Instant>,
}

impl Machine {
    fn emit(&self, force: bool) {
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        if !force && last.elapsed() < std::time::Duration::from_millis(500) {
            return;
        }
        *last = std::time::Instant::now();
        let (phase, total) = match self.phase.lock() {
            Ok(p) => p.clone(),
            Err(_) => return,
        };
        let line = cairn_protocol::ProgressLine {
            phase,
            bytes: self.bytes.load(Ordering::Relaxed),
            total,
        };
        eprintln!("{}", line.to_line());
    }
}

impl CliProgress {
    /// A bar when stderr is a terminal and output is neither quiet nor JSON.
    pub fn new(quiet: bool, json: bool) -> Self {
        let show = !quiet && !json && std::io::stderr().is_terminal();
        let bar = show.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
            bar.enable_steady_tick(std::time::Duration::from_millis(250));
            bar
        });
        use cairn_protocol::progress::{PROGRESS_ENV, PROGRESS_JSON};
        let machine =
            (std::env::var(PROGRESS_ENV).as_deref() == Ok(PROGRESS_JSON)).then(|| Machine {
                phase: std::sync::Mutex::new((String::new(), None)),
                bytes: AtomicU64::new(0),
                last: std::sync::Mutex::new(std::time::Instant::now()),
            });
        Self {
            bar,
            list_files: 0,
            files: AtomicU64::new(0),
            machine,
        }
    }

    /// List backed-up files on stdout: with 1 the new and modified ones,
    /// with 2 or more the unchanged ones too (`-v`, `-vv`).
    pub fn listing_files(mut self, verbose: u8) -> Self {
        self.list_files = verbose;
        self
    }
}

impl Progress for CliProgress {
    fn phase(&self, name: &str, total: Option<u64>) {
        if let Some(m) = &self.machine {
            if let Ok(mut p) = m.phase.lock() {
                *p = (name.to_string(), total);
            }
            m.bytes.store(0, Ordering::Relaxed);
            m.emit(true);
        }
        let Some(bar) = &self.bar else { return };
        bar.reset();
        bar.set_prefix(name.to_string());
        match total {
            Some(t) => {
                bar.set_length(t);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix:>9} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({percent}%, {eta} left) {binary_bytes_per_sec} {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
            }
            None => {
                bar.unset_length();
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix:>9} [{elapsed_precise}] {spinner} {bytes} {binary_bytes_per_sec} {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
            }
        }
    }

    fn bytes(&self, n: u64) {
        if let Some(m) = &self.machine {
            m.bytes.fetch_add(n, Ordering::Relaxed);
            m.emit(false);
        }
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    fn file_done(&self, path: &Path) {
        let n = self.files.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(bar) = &self.bar {
            // The bar redraws at most 4 times a second; the message is
            // only stored here.
            let shown = path.display().to_string();
            let tail: String = if shown.chars().count() > 60 {
                let skip = shown.chars().count() - 59;
                format!("…{}", shown.chars().skip(skip).collect::<String>())
            } else {
                shown
            };
            bar.set_message(format!("{n} files  {tail}"));
        }
    }

    fn file_change(&self, path: &Path, change: FileChange) {
        let word = match change {
            FileChange::New if self.list_files >= 1 => "new",
            FileChange::Modified if self.list_files >= 1 => "modified",
            FileChange::Unchanged if self.list_files >= 2 => "unchanged",
            _ => return,
        };
        let print = || outln!("{word:<9} {}", path.display());
        match &self.bar {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }

    fn warn(&self, message: &str) {
        // Warnings are kept under -q: they say what a snapshot lacks.
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("cairn: warning: {message}")),
            None => eprintln!("cairn: warning: {message}"),
        }
    }

    fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
