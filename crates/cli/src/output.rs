//! Formatting shared by commands: sizes, times, JSON, snapshot rows.

use anyhow::Result;
use cairn_repository::{Snapshot, SnapshotId};
use serde::Serialize;

/// Write to standard output. A reader that went away (`cairn snapshots |
/// head -1`) ends the command quietly with the conventional status 141
/// (128 + SIGPIPE), never a panic; any other write error ends it with 1.
pub fn stdout_write(args: std::fmt::Arguments<'_>, newline: bool) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| {
            if newline {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| out.flush());
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(i32::from(cairn_protocol::ExitCode::ClosedStdout.code()));
        }
        eprintln!("cairn: writing to standard output: {e}");
        std::process::exit(1);
    }
}

/// Write to standard output through one buffer, flushed once at the end
/// (a hundred thousand rows are one write, not a hundred thousand), with
/// [`stdout_write`]'s handling of a closed or failing stdout.
pub fn stdout_buffered(write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>) {
    use std::io::Write;
    let stdout = std::io::stdout().lock();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout);
    let written = write(&mut out).and_then(|()| out.flush());
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(i32::from(cairn_protocol::ExitCode::ClosedStdout.code()));
        }
        eprintln!("cairn: writing to standard output: {e}");
        std::process::exit(1);
    }
}

/// `println!` that ends the command quietly when stdout is closed.
macro_rules! outln {
    () => {
        $crate::output::stdout_write(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::output::stdout_write(format_args!($($arg)*), true)
    };
}

/// `print!` that ends the command quietly when stdout is closed.
#[allow(unused_macros)]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::stdout_write(format_args!($($arg)*), false)
    };
}

/// Bytes in binary units (`1.5 MiB`).
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A duration in the largest whole units that fit (`24h`, `90m`, `0s`).
pub fn duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "0s".into(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A timestamp in the local time zone, to the second, with the zone's
/// abbreviation (`2026-12-02 14:05:09 CET`).
pub fn local_time(ts: jiff::Timestamp) -> String {
    ts.to_zoned(jiff::tz::TimeZone::system())
        .strftime("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

/// A timestamp in a given time zone, with its offset.
pub fn time_in(ts: jiff::Timestamp, tz: &jiff::tz::TimeZone) -> String {
    ts.to_zoned(tz.clone())
        .strftime("%Y-%m-%d %H:%M:%S %:z")
        .to_string()
}

/// Seconds and nanoseconds as a local time (tables).
pub fn unix_time(sec: i64, nsec: u32) -> String {
    match jiff::Timestamp::new(sec, nsec as i32) {
        Ok(ts) => local_time(ts),
        Err(_) => format!("@{sec}"),
    }
}

/// Seconds and nanoseconds in RFC 3339, UTC (JSON); a time jiff cannot
/// represent is `@seconds`.
pub fn unix_time_utc(sec: i64, nsec: u32) -> String {
    match jiff::Timestamp::new(sec, nsec as i32) {
        Ok(ts) => ts.to_string(),
        Err(_) => format!("@{sec}"),
    }
}

/// Print a value as pretty JSON on stdout.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    let mut failed = None;
    stdout_buffered(|out| {
        if let Err(e) = serde_json::to_writer_pretty(&mut *out, value) {
            if e.is_io() {
                return Err(e.into());
            }
            failed = Some(e);
            return Ok(());
        }
        out.write_all(b"\n")
    });
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// A snapshot as listed in JSON.
#[derive(Debug, Serialize)]
pub struct SnapshotRow<'a> {
    /// Full id.
    pub id: SnapshotId,
    /// First 8 hex digits.
    pub short_id: String,
    /// The manifest.
    #[serde(flatten)]
    pub snapshot: &'a Snapshot,
}

impl<'a> SnapshotRow<'a> {
    /// Row for a snapshot.
    pub fn new(id: SnapshotId, snapshot: &'a Snapshot) -> Self {
        Self {
            id,
            short_id: id.short(),
            snapshot,
        }
    }
}

/// A table for listings: a header underlined with dashes, columns two
/// spaces apart, no borders; `right` names the columns aligned right
/// (sizes, counts). Long cells widen their column instead of shifting
/// the rows after them.
pub fn table(header: &[&str], right: &[usize]) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset("     --            ");
    t.set_header(header.to_vec());
    for i in 0..header.len() {
        if let Some(c) = t.column_mut(i) {
            c.set_padding((0, 1));
            if right.contains(&i) {
                c.set_cell_alignment(comfy_table::CellAlignment::Right);
            }
        }
    }
    t
}

/// Print a table on stdout, without trailing blanks.
pub fn print_table(t: &comfy_table::Table) {
    stdout_buffered(|out| {
        for line in t.lines() {
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    });
}

/// Format a Unix mode like `ls -l` (`drwxr-x---`, `-rwsr-xr-x`,
/// `drwxrwxrwt`): setuid and setgid show as `s` (`S` without the execute
/// bit), sticky as `t` (`T`).
pub fn mode_string(kind: char, mode: u32) -> String {
    let mut s = String::with_capacity(10);
    s.push(kind);
    for (shift, special, mark) in [(6, 0o4000, 's'), (3, 0o2000, 's'), (0, 0o1000, 't')] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(match (bits & 1 != 0, mode & special != 0) {
            (true, true) => mark,
            (false, true) => mark.to_ascii_uppercase(),
            (true, false) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// `1 snapshot`, `2 snapshots`, `0 entries`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Names looked up once per id.
type NameCache = std::sync::Mutex<Option<std::collections::HashMap<u32, String>>>;

fn cached_name(cache: &NameCache, id: u32, lookup: impl FnOnce(u32) -> Option<String>) -> String {
    let mut cache = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    cache
        .get_or_insert_with(Default::default)
        .entry(id)
        .or_insert_with(|| lookup(id).unwrap_or_else(|| id.to_string()))
        .clone()
}

/// The local name of a user id, or the number (as `tar -tv` shows an
/// archive's owners: names are this machine's).
pub fn user_name(uid: u32) -> String {
    static CACHE: NameCache = std::sync::Mutex::new(None);
    cached_name(&CACHE, uid, |id| {
        nix::unistd::User::from_uid(id.into())
            .ok()
            .flatten()
            .map(|u| u.name)
    })
}

/// The local name of a group id, or the number.
pub fn group_name(gid: u32) -> String {
    static CACHE: NameCache = std::sync::Mutex::new(None);
    cached_name(&CACHE, gid, |id| {
        nix::unistd::Group::from_gid(id.into())
            .ok()
            .flatten()
            .map(|g| g.name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(size(10), "10 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(5 << 30), "5.0 GiB");
        assert_eq!(mode_string('d', 0o750), "drwxr-x---");
        assert_eq!(mode_string('-', 0o644), "-rw-r--r--");
        assert_eq!(mode_string('-', 0o4755), "-rwsr-xr-x");
        assert_eq!(mode_string('-', 0o2644), "-rw-r-Sr--");
        assert_eq!(mode_string('d', 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string('d', 0o1770), "drwxrwx--T");
        assert_eq!(count(1, "snapshot", "snapshots"), "1 snapshot");
        assert_eq!(count(0, "entry", "entries"), "0 entries");
        assert_eq!(user_name(0), "root");
        let mut t = table(&["id", "host", "size"], &[2]);
        t.add_row(vec!["a1", "a-very-long-host-name", "1 B"]);
        t.add_row(vec!["b2", "h", "10.0 KiB"]);
        let lines: Vec<String> = t.lines().map(|l| l.trim_end().to_string()).collect();
        assert_eq!(lines[0], "id  host                       size");
        assert!(
            lines[1].starts_with("----") && !lines[1].contains(' '),
            "{lines:?}"
        );
        assert_eq!(lines[2], "a1  a-very-long-host-name       1 B");
        assert_eq!(lines[3], "b2  h                      10.0 KiB");
        assert_eq!(user_name(4_000_000_000), "4000000000");
    }
}
