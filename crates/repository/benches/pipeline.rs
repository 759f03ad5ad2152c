//! The in-process backup and restore pipeline on a generated tree (small
//! files, compressible and incompressible large files, zero runs) in a
//! local repository: first backup, unchanged re-backup, full restore.
//! Throughput is over the tree's bytes. `benches/compare.sh` measures the
//! same paths through the CLI against restic and borg.
//!
//! Two hot paths on their own: sealing one chunk (zstd into the thread's
//! reused buffer, then XChaCha20-Poly1305) and a local store's range reads
//! (a tree per directory in a backup, thousands of blobs in a restore).

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

/// Half text-like, half random: a chunk of a typical binary or database.
fn mixed_chunk(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if i % 4096 < 2048 {
                b"INSERT tuple xid heap "[i % 22]
            } else {
                state as u8
            }
        })
        .collect()
}

fn hot_paths(c: &mut Criterion) {
    use cairn_format::crypto::{Compression, Keys, MasterKey, encode_blob};
    use cairn_format::id::BlobKind;

    let keys = Keys::derive(&MasterKey::generate().unwrap());
    let chunk = mixed_chunk(1 << 20);
    let mut group = c.benchmark_group("hot");
    group.throughput(Throughput::Bytes(chunk.len() as u64));
    group.bench_function("encode-blob-1MiB", |b| {
        let compression = Compression::default();
        b.iter(|| encode_blob(&keys, &compression, BlobKind::Data, &[7; 32], &chunk).unwrap())
    });

    // A 64 MiB pack object read back as 4 KiB ranges, as tree loads do.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local(dir.path(), true).unwrap();
    let name = "ab".repeat(32);
    store
        .put(
            cairn_store::ObjectKind::Pack,
            &name,
            bytes::Bytes::from(mixed_chunk(64 << 20)),
        )
        .unwrap();
    group.throughput(Throughput::Bytes(4096));
    let mut offset = 0u64;
    group.bench_function("local-get-range-4KiB", |b| {
        b.iter(|| {
            offset = (offset + 1_048_583) % ((64 << 20) - 4096);
            store
                .get_range(cairn_store::ObjectKind::Pack, &name, offset..offset + 4096)
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench, hot_paths);
criterion_main!(benches);
