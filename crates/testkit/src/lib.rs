//! cairn's test kit, for tests only (a dev-dependency; nothing here ships
//! in a release build): the storage conformance suite ([`conformance`]),
//! fault-injecting object stores ([`faults`]), generated directory trees
//! ([`trees`]), a fault-injecting HTTP proxy ([`proxy`]) and real
//! S3-compatible servers on loopback ([`s3`]).
//!
//! It depends on the store and format crates, never on the repository, so
//! the repository's own unit tests can use it.

#![warn(unreachable_pub)]
// A test kit reports failures by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod conformance;
pub mod faults;
pub mod proxy;
pub mod s3;
pub mod trees;

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
