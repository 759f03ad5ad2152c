//! Retention policy evaluation for cairn.
//!
//! This crate will own the policy file format (`docs/RETENTION.md`) and the
//! decision of which snapshots and log segments to keep, with the reasons.
//! It is pure: snapshot metadata and a clock go in, a plan comes out. It must
//! not know about repositories, storage, encryption or the file system, and
//! it performs no I/O.
//!
//! The foundation issue only reserves the crate; the retention issue fills it.
