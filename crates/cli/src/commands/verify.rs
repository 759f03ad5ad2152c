//! `cairn verify SNAP [--command CMD]`: authenticate every blob of a
//! snapshot, optionally run an application's check against a restored
//! copy, and record the verdict.

use crate::cli::VerifyArgs;
use crate::context::Context;
use crate::exit;
use crate::output::{self, size};
use crate::progress::CliProgress;
use anyhow::{Context as _, Result};
use cairn_repository::{Verdict, verify_snapshot};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

/// The last lines of a command's output, for the record.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Run `command` in `dir`; `Ok(None)` when it succeeded, else what failed.
fn run_check(command: &str, dir: &Path, snapshot: &str) -> Result<Option<String>> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .env("CAIRN_VERIFY_DIR", dir)
        .env("CAIRN_SNAPSHOT", snapshot)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting the verify command {command:?}"))?;
    // Both pipes drained at once, so a chatty command cannot block.
    let mut stdout = child.stdout.take();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = stdout.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        s
    });
    let mut err = String::new();
    if let Some(e) = child.stderr.as_mut() {
        let _ = e.read_to_string(&mut err);
    }
    let out = out_reader.join().unwrap_or_default();
    let status = child.wait().context("waiting for the verify command")?;
    if status.success() {
        return Ok(None);
    }
    let output = tail(&format!("{out}\n{err}"), 10);
    Ok(Some(if output.is_empty() {
        format!("the verify command {command:?} failed ({status})")
    } else {
        format!("the verify command {command:?} failed ({status}):\n{output}")
    }))
}

/// How long a finished verification waits for the lock to record its
/// verdict, unless `--retry-lock` asks for longer.
const RECORD_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Verify one snapshot.
pub fn run(ctx: &Context, args: &VerifyArgs) -> Result<u8> {
    let repo = ctx.open(false)?;
    // Reading takes no lock: prune deletes packs only after a grace period
    // (FORMAT.md, "Concurrency and deletion"). The record is a write.
    let (id, snap) = super::find_snapshot(&repo, &args.snapshot, &args.filter)?;
    let stop = crate::signals::stop_requested()?;
    let progress = CliProgress::new(ctx.global.quiet, ctx.global.json);
    let blobs = verify_snapshot(&repo, &id, &progress)?;
    if stop.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(cairn_repository::Error::Interrupted(
            "verification stopped on request; nothing was recorded".into(),
        )
        .into());
    }
    let mut failures: Vec<String> = blobs.problems.iter().take(20).cloned().collect();
    if blobs.problems.len() > 20 {
        failures.push(format!("and {} more problems", blobs.problems.len() - 20));
    }
    let mut command_ran = false;
    if let (Some(command), true) = (&args.command, blobs.is_ok()) {
        let parent = args.scratch.clone().unwrap_or_else(std::env::temp_dir);
        std::fs::create_dir_all(&parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        let scratch = tempfile::Builder::new()
            .prefix("cairn-verify-")
            .tempdir_in(&parent)
            .with_context(|| format!("creating a scratch directory in {}", parent.display()))?;
        match super::logs::restore_snapshot(ctx, &repo, &snap, scratch.path()) {
            Ok(_) => {
                command_ran = true;
                if let Some(why) = run_check(command, scratch.path(), &id.to_hex())? {
                    failures.push(why);
                }
            }
            Err(e) => failures.push(format!(
                "restoring a copy to check failed: {}",
                crate::exit::render(&e)
            )),
        }
        // The scratch copy goes whatever happened (TempDir's drop).
    }
    let verdict = if failures.is_empty() {
        Verdict::Verified
    } else {
        Verdict::Failed
    };
    let detail = failures.join("\n");
    let only_the_command_failed = command_ran && blobs.is_ok() && verdict == Verdict::Failed;
    if only_the_command_failed && !args.no_record {
        // A wrong command would mark a good snapshot failed, and retention
        // does not count failed snapshots as restorable: say so first.
        eprintln!(
            "cairn: warning: every blob of snapshot {} authenticated but the verify command failed; \
             recording the snapshot as failed, which retention treats as not restorable. \
             If the command is wrong, try it with `cairn verify --no-record`; a later verify records a new verdict.",
            id.short()
        );
    }
    let recorded = if args.no_record {
        None
    } else {
        // A forget or prune that runs meanwhile holds the exclusive lock
        // for a while; the verdict waits for it rather than be thrown away.
        let _lock = repo.lock_waiting(false, "verify", ctx.lock_wait_at_least(RECORD_LOCK_WAIT))?;
        Some(cairn_repository::verification::record_verification(
            &repo,
            &id,
            verdict,
            args.command.as_deref(),
            &detail,
        )?)
    };
    if ctx.global.json {
        output::json(&cairn_protocol::report::VerifyReport {
            snapshot: id.to_hex(),
            verdict: match verdict {
                Verdict::Verified => "verified",
                Verdict::Failed => "failed",
            }
            .to_string(),
            blobs: blobs.blobs as u64,
            packs: blobs.packs as u64,
            bytes_read: blobs.bytes_read,
            command: args.command.clone(),
            command_ran,
            problems: failures.clone(),
            record: recorded.map(|r| r.to_hex()),
        })?;
    } else if !ctx.global.quiet {
        let what = format!(
            "{} blobs in {} packs ({}) authenticated{}",
            blobs.blobs - blobs.problems.len().min(blobs.blobs),
            blobs.packs,
            size(blobs.bytes_read),
            if command_ran {
                ", the verify command ran on a restored copy"
            } else {
                ""
            }
        );
        match verdict {
            Verdict::Verified => outln!("snapshot {} verified: {what}", id.short()),
            Verdict::Failed => {
                outln!("snapshot {} FAILED verification: {what}", id.short());
                for f in &failures {
                    outln!("  {f}");
                }
            }
        }
    }
    Ok(match verdict {
        Verdict::Verified => exit::OK,
        Verdict::Failed => exit::FATAL,
    })
}
