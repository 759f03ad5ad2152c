//! Generate the reproducible benchmark data set (or mutate it).
//!
//! `gen-tree DIR [--small N] [--large N] [--large-size BYTES] [--seed S]`
//! `gen-tree DIR --mutate [--seed S]`

// A command-line helper for benchmarks: failures abort with a message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cairn_e2e::{TreeSpec, generate_tree, mutate_tree};
use std::path::PathBuf;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().expect("usage: gen-tree DIR [options]"));
    let mut spec = TreeSpec::default();
    let mut mutate = false;
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .expect("missing value")
                .parse::<u64>()
                .expect("not a number")
        };
        match flag.as_str() {
            "--small" => spec.small_files = value() as usize,
            "--large" => spec.large_files = value() as usize,
            "--large-size" => spec.large_size = value() as usize,
            "--seed" => spec.seed = value(),
            "--mutate" => mutate = true,
            other => panic!("unknown option {other}"),
        }
    }
    if mutate {
        mutate_tree(&dir, spec.seed);
    } else {
        generate_tree(&dir, spec);
    }
}
