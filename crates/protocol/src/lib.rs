//! What cairn's processes say to each other: the `cairn` command writes,
//! the service (which runs `cairn` as child processes) reads. Exit codes
//! ([`exit`]), progress lines on stderr ([`progress`]), the `--json`
//! reports the service reads ([`report`]), and the one duration grammar of
//! command-line options and config files ([`duration`]).
//!
//! What this crate must not know: every other cairn crate. Both sides
//! depend on it, so a change here is a change to both, checked by the
//! compiler instead of by an end-to-end test.

#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

pub mod duration;
pub mod exit;
pub mod progress;
pub mod report;

pub use duration::parse_duration;
pub use exit::ExitCode;
pub use progress::ProgressLine;
