//! The cairn backup service (`cairn service run`): it runs backup,
//! retention and sync jobs on their schedules, verifies every new
//! snapshot, tells the administrator when something is wrong, and runs
//! everything through a persisted operation queue that `cairn queue`
//! controls.
//!
//! This crate owns the service's config file, its schedule state and
//! queue (redb, [`state`]), the scheduling rule ([`schedule`]),
//! notifications ([`notify`]), hooks and child processes ([`process`]),
//! and the control socket ([`control`]).
//!
//! It must not know the repository format: every job is a child process of
//! the `cairn` binary ([`runner`]), so the service holds no key material,
//! shares every safety property of the CLI (locks, safe points on
//! SIGTERM, exit statuses) and cannot corrupt a repository the CLI would
//! not. Time comes from an injectable [`core::Clock`] so the schedule
//! is tested without waiting.

#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

pub mod config;
pub mod control;
pub mod core;
pub mod daemon;
pub mod duration;
pub mod notify;
pub mod process;
pub mod queue;
pub mod runner;
pub mod schedule;
pub mod state;

pub use config::{Config, ConfigError, JobRef};
pub use core::{Clock, Core, JobStatus, ServiceError, SystemClock};
pub use daemon::run;
pub use notify::{Event, EventKind, Notifications, Notifier};
pub use queue::{ItemState, QueueItem, Reason};
pub use runner::{Executor, JobContext, JobResult, ProcessExecutor};
pub use state::{State, StateError};
