//! Replication of a cairn repository to another object store (S3 and
//! compatible servers) and back.
//!
//! This crate will own the copy plan (which objects the destination lacks,
//! in the order that keeps the destination consistent: packs, then indexes,
//! then manifests), deletion propagation and verification of a remote copy.
//! It builds on `cairn-repository` for object kinds and names, and must not
//! know about the command line or about how backups are made.
//!
//! The foundation issue only reserves the crate; the replication issue fills it.
