//! cairn's repository format: bytes to types and back, with no I/O. Each
//! module implements one section of `docs/FORMAT.md`, which is the
//! specification; this crate is that document in code.
//!
//! What this crate owns: identifiers ([`id`]), the wire encoding ([`wire`]),
//! the cipher and envelope header ([`cipher`]), blob encoding and sealed
//! objects ([`crypto`]),
//! the master key and the keys of full and put-only hosts ([`keys`]),
//! sealing to a public key for put-only keys ([`seal_to`]), key files ([`keyfile`]), the `config` object ([`config`]),
//! the pack, index and tree codecs ([`pack`], [`index`], [`tree`]), every
//! manifest ([`snapshot`], [`account`], [`log_segment`], [`verification`],
//! [`pending`]) under one rule ([`manifest`]), locks ([`lock`]), the names
//! users choose ([`names`]) and where each object lives ([`layout`]).
//!
//! What it must not know: storage (no object_store, tokio or redb in its
//! dependency tree), the local cache, locking protocol, operations.
//!
//! Principles: untrusted bytes become [`Error`]s, never panics; every
//! length is checked before it is used; a format change is a change to
//! `docs/FORMAT.md` in the same commit.

#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

pub mod account;
pub mod cipher;
pub mod config;
pub mod crypto;
pub mod error;
pub mod id;
pub mod index;
pub mod keyfile;
pub mod keys;
pub mod layout;
pub mod lock;
pub mod log_segment;
pub mod manifest;
pub mod names;
pub mod pack;
pub mod pending;
pub mod seal_to;
pub mod snapshot;
pub mod tree;
pub mod verification;
pub mod wire;

#[cfg(test)]
mod spec_tests;

pub use error::{Error, Result};
pub use layout::{ObjectKind, ObjectName};
pub use manifest::Manifest;
