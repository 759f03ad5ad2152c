//! Build a synthetic repository for `benches/scale.sh`: many accounts with
//! many tiny snapshots, and optionally one snapshot holding millions of
//! tiny blobs, written through the library in seconds instead of the hours
//! that one real backup per snapshot would take.
//!
//! ```text
//! scale_repo DIR PASSWORD_FILE --accounts N --snapshots M [--blobs B]
//! scale_repo DIR PASSWORD_FILE --blobs B --lookups N --cache CACHE_DIR
//! ```
//!
//! The second form builds nothing: it opens the repository that the first
//! built with `--blobs B`, times opening its index cache in `CACHE_DIR`
//! (built there by `cairn cache rebuild`) and `N` lookups of random bulk
//! blobs, and prints the rate as JSON.
//!
//! Every snapshot of account `a` on day `d` has a root tree of its own
//! holding `common/` (20 files, one tree shared by every snapshot),
//! `inbox/` (5 messages, one tree per account) and `day` (one chunk per
//! day). Snapshots are spread over accounts round-robin, on 16 hosts, one
//! day apart. Manifests of a local repository are written straight into
//! `DIR/snapshots/` (sealed exactly as cairn seals them). With `--blobs`,
//! account `bulk` gets one more snapshot whose files reference `B`
//! distinct 16-byte chunks, 1,000 per file, 100 files per directory.
//!
//! The key file uses the minimal key-derivation cost, so timings show the
//! repository's own work.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use cairn_repository::keyfile::KdfCost;
use cairn_repository::manifest::seal;
use cairn_repository::tree::{Metadata, Node, NodeData, Time};
use cairn_repository::writer::BlobWriter;
use cairn_repository::{
    BlobKind, CacheLocation, ChunkId, InitOptions, RawPath, Repository, Snapshot, SnapshotStatus,
    Store, Summary, Tree, TreeId,
};
use std::path::PathBuf;
use std::time::Instant;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Args {
    dir: PathBuf,
    password: PathBuf,
    accounts: u64,
    snapshots: u64,
    blobs: u64,
    lookups: u64,
    cache: Option<PathBuf>,
}

fn parse_args() -> Res<Args> {
    let mut it = std::env::args().skip(1);
    let usage = "usage: scale_repo DIR PASSWORD_FILE --accounts N --snapshots M [--blobs B]";
    let dir = PathBuf::from(it.next().ok_or(usage)?);
    let password = PathBuf::from(it.next().ok_or(usage)?);
    let (mut accounts, mut snapshots, mut blobs, mut lookups) = (1, 1, 0, 0);
    let mut cache = None;
    while let Some(flag) = it.next() {
        let text = it.next().ok_or(usage)?;
        if flag == "--cache" {
            cache = Some(PathBuf::from(text));
            continue;
        }
        let value: u64 = text.parse()?;
        match flag.as_str() {
            "--lookups" => lookups = value,
            "--accounts" => accounts = value.max(1),
            "--snapshots" => snapshots = value,
            "--blobs" => blobs = value,
            _ => return Err(usage.into()),
        }
    }
    Ok(Args {
        dir,
        password,
        accounts,
        snapshots,
        blobs,
        lookups,
        cache,
    })
}

fn meta(mode: u32, size: u64, sec: i64) -> Metadata {
    Metadata {
        mode,
        uid: 1000,
        gid: 1000,
        mtime: Time { sec, nsec: 0 },
        ctime: Time { sec, nsec: 0 },
        inode: 0,
        device: 0,
        size,
        rdev: 0,
    }
}

fn file(name: &str, chunks: Vec<ChunkId>, size: u64, sec: i64) -> Node {
    Node {
        name: name.as_bytes().to_vec(),
        meta: meta(0o100644, size, sec),
        data: NodeData::File { chunks },
    }
}

fn dir(name: &str, subtree: TreeId, sec: i64) -> Node {
    Node {
        name: name.as_bytes().to_vec(),
        meta: meta(0o040755, 0, sec),
        data: NodeData::Dir { subtree },
    }
}

fn put_chunk(w: &BlobWriter<'_>, content: &[u8]) -> Res<ChunkId> {
    let (id, _) = w.store_plain(BlobKind::Data, content)?;
    Ok(ChunkId::from_bytes(id))
}

fn put_tree(w: &BlobWriter<'_>, nodes: Vec<Node>) -> Res<TreeId> {
    let (id, _) = w.store_plain(BlobKind::Tree, &Tree::new(nodes).encode())?;
    Ok(TreeId::from_bytes(id))
}

/// The plaintext of bulk blob `i`.
fn bulk_content(i: u64) -> [u8; 16] {
    let mut content = [0u8; 16];
    content[..8].copy_from_slice(&i.to_le_bytes());
    content[8..].copy_from_slice(b"bulkblob");
    content
}

/// Open the repository, its index cache, and look up `count` random bulk
/// blobs; print the times as JSON.
fn lookups(args: &Args, password: &[u8], cache: &std::path::Path) -> Res<()> {
    let store = Store::local(&args.dir, false)?;
    let repo = Repository::open(
        store,
        password,
        CacheLocation::Directory(cache.to_path_buf()),
    )?;
    let t0 = Instant::now();
    let index = repo.index()?;
    let view = index.view()?;
    let open_s = t0.elapsed().as_secs_f64();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let t1 = Instant::now();
    let mut found = 0u64;
    for _ in 0..args.lookups {
        // xorshift: a spread of ids, not a cache-friendly run.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let id = repo
            .keys()
            .blob_id(BlobKind::Data, &bulk_content(x % args.blobs.max(1)));
        if view.lookup(&id)?.is_some() {
            found += 1;
        }
    }
    let lookup_s = t1.elapsed().as_secs_f64();
    if found != args.lookups {
        return Err(format!("{found} of {} lookups found their blob", args.lookups).into());
    }
    println!(
        "{{\"open_s\": {open_s:.6}, \"lookups\": {}, \"lookup_s\": {lookup_s:.6}, \"lookups_per_s\": {:.0}}}",
        args.lookups,
        args.lookups as f64 / lookup_s.max(1e-9)
    );
    Ok(())
}

/// Files of `per_file` distinct 16-byte chunks, `per_dir` files per
/// directory, `total` chunks in all; the root tree of them.
fn bulk_tree(w: &BlobWriter<'_>, total: u64, sec: i64) -> Res<TreeId> {
    const PER_FILE: u64 = 1000;
    const PER_DIR: u64 = 100;
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    let mut next = 0u64;
    while next < total {
        let n = PER_FILE.min(total - next);
        let mut chunks = Vec::with_capacity(n as usize);
        for i in next..next + n {
            chunks.push(put_chunk(w, &bulk_content(i))?);
        }
        files.push(file(&format!("f{next:012}"), chunks, n * 16, sec));
        next += n;
        if files.len() as u64 == PER_DIR || next >= total {
            let t = put_tree(w, std::mem::take(&mut files))?;
            dirs.push(dir(&format!("d{:08}", dirs.len()), t, sec));
        }
    }
    put_tree(w, dirs)
}

fn main() -> Res<()> {
    let args = parse_args()?;
    let started = Instant::now();
    let password = std::fs::read(&args.password)?;
    let password = password.split(|b| *b == b'\n').next().unwrap_or_default();
    if let (true, Some(cache)) = (args.lookups > 0, &args.cache) {
        return lookups(&args, password, cache);
    }
    std::fs::create_dir_all(&args.dir)?;
    let store = Store::local(&args.dir, true)?;
    let opts = InitOptions {
        kdf: KdfCost::MINIMAL,
        ..InitOptions::default()
    };
    let repo = Repository::init(store, password, &opts, CacheLocation::InMemory)?;
    let _lock = repo.lock(true, "scale bench generator")?;
    let base = jiff::Timestamp::from_second(1_767_225_600)?; // 2026-01-01
    let writer = BlobWriter::new(&repo)?;

    let mut common = Vec::new();
    for i in 0..20 {
        let text = format!("common file {i}\n");
        let c = put_chunk(&writer, text.as_bytes())?;
        common.push(file(
            &format!("common-{i:02}.txt"),
            vec![c],
            text.len() as u64,
            base.as_second(),
        ));
    }
    let common = put_tree(&writer, common)?;
    let mut inboxes = Vec::with_capacity(args.accounts as usize);
    for a in 0..args.accounts {
        let mut msgs = Vec::new();
        for m in 0..5 {
            let text = format!("From: someone\nTo: account {a}\n\nmessage {m}\n");
            let c = put_chunk(&writer, text.as_bytes())?;
            msgs.push(file(
                &format!("msg-{m}.eml"),
                vec![c],
                text.len() as u64,
                base.as_second(),
            ));
        }
        inboxes.push(put_tree(&writer, msgs)?);
    }
    let per_account = args.snapshots.div_ceil(args.accounts);
    let mut days = Vec::with_capacity(per_account as usize);
    for d in 0..per_account {
        let text = format!("day {d}\n");
        days.push((put_chunk(&writer, text.as_bytes())?, text.len() as u64));
    }
    let mut roots = Vec::with_capacity(args.snapshots as usize);
    for k in 0..args.snapshots {
        let (a, d) = (k % args.accounts, k / args.accounts);
        let sec = base.as_second() + (d as i64) * 86_400 + a as i64;
        let root = put_tree(
            &writer,
            vec![
                dir("common", common, sec),
                file("day", vec![days[d as usize].0], days[d as usize].1, sec),
                dir("inbox", inboxes[a as usize], sec),
            ],
        )?;
        roots.push((a, d, sec, root));
    }
    let bulk = if args.blobs > 0 {
        Some(bulk_tree(&writer, args.blobs, base.as_second())?)
    } else {
        None
    };
    let stats = writer.finish()?;
    eprintln!(
        "scale_repo: {} blobs in {} packs, {} index objects ({:.1} s)",
        stats.blobs_added,
        stats.packs_written,
        stats.indexes_written,
        started.elapsed().as_secs_f64()
    );

    let snapshot = |account: String, host: String, sec: i64, tree: TreeId| -> Res<Snapshot> {
        Ok(Snapshot {
            version: cairn_repository::snapshot::SNAPSHOT_VERSION,
            time: jiff::Timestamp::from_second(sec)?,
            host,
            username: "bench".into(),
            paths: vec![RawPath(format!("/srv/mail/{account}").into_bytes())],
            account,
            tags: Vec::new(),
            parent: None,
            tree,
            status: SnapshotStatus::Complete,
            summary: Summary::default(),
            program: "cairn scale bench".into(),
        })
    };
    let snap_dir = args.dir.join("snapshots");
    std::fs::create_dir_all(&snap_dir)?;
    let mut written = 0u64;
    for (a, _, sec, root) in roots {
        let s = snapshot(format!("user{a:05}"), format!("mx{:02}", a % 16), sec, root)?;
        let (id, bytes) = seal(repo.keys(), &s)?;
        std::fs::write(snap_dir.join(id.to_hex()), bytes)?;
        written += 1;
    }
    if let Some(tree) = bulk {
        let s = snapshot("bulk".into(), "bulk".into(), base.as_second(), tree)?;
        repo.save_snapshot(&s)?;
        written += 1;
    }
    eprintln!(
        "scale_repo: {written} snapshots over {} accounts in {} ({:.1} s)",
        args.accounts,
        args.dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
