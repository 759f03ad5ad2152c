//! The in-process backup and restore pipeline on a generated tree (small
//! files, compressible and incompressible large files, zero runs) in a
//! local repository: first backup, unchanged re-backup, full restore.
//! Throughput is over the tree's bytes. `benches/compare.sh` measures the
//! same paths through the CLI against restic and borg.

// Benchmark setup aborts on failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cairn_repository::{
    BackupOptions, CacheLocation, InitOptions, KdfCost, NoProgress, Repository, RestoreOptions,
    Store, backup, restore,
};
use cairn_testkit::trees::{TreeSpec, generate_tree};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::path::Path;

fn init(dir: &Path) -> Repository {
    let opts = InitOptions {
        kdf: KdfCost::MINIMAL,
        ..InitOptions::default()
    };
    Repository::init(
        Store::local(&dir.join("repo"), true).unwrap(),
        b"bench",
        &opts,
        CacheLocation::Directory(dir.join("cache")),
    )
    .unwrap()
}

fn tree_bytes(root: &Path) -> u64 {
    cairn_testkit::trees::walk(root)
        .iter()
        .filter_map(|p| std::fs::symlink_metadata(root.join(p)).ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

fn bench(c: &mut Criterion) {
    let data_dir = tempfile::tempdir().unwrap();
    let src = data_dir.path().join("src");
    generate_tree(
        &src,
        TreeSpec {
            small_files: 2000,
            large_files: 6,
            large_size: 16 << 20,
            seed: 77,
        },
    );
    let bytes = tree_bytes(&src);
    let opts = BackupOptions::new(vec![src.clone()]);

    let mut group = c.benchmark_group("pipeline");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes));

    group.bench_function("backup-first", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let repo = init(dir.path());
                (dir, repo)
            },
            |(dir, repo)| {
                backup(&repo, &opts, &NoProgress).unwrap();
                drop(repo);
                dir
            },
            BatchSize::PerIteration,
        )
    });

    let dir = tempfile::tempdir().unwrap();
    let repo = init(dir.path());
    let first = backup(&repo, &opts, &NoProgress).unwrap();
    group.bench_function("backup-unchanged", |b| {
        b.iter(|| backup(&repo, &opts, &NoProgress).unwrap())
    });

    group.bench_function("restore", |b| {
        b.iter_batched(
            || tempfile::tempdir().unwrap(),
            |target| {
                let o = RestoreOptions::new(target.path().to_path_buf());
                restore(&repo, &first.snapshot, None, &o, &NoProgress).unwrap();
                target
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
