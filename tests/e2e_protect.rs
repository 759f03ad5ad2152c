//! End-to-end: protecting backups from the host they protect (README, the
//! section of that name; docs/FORMAT.md "Hosts without delete rights").
//! A backup host reaches the repository on a real S3 server (moto and
//! s3rver) through a proxy that refuses what its credentials may not do:
//! every DELETE, every PUT that is not create-only. Everything a backup
//! host does works through it; what deletes fails before it changes
//! anything; a maintenance host with full rights then prunes.

// Tests report failures by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cairn_e2e::proxy::{FaultPlan, FaultProxy};
use cairn_e2e::s3::Server;
use cairn_e2e::{TreeSpec, assert_same_tree, generate_tree, mutate_tree, on_both, s3_env};
use cairn_repository::ObjectKind;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::Ordering;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Options for reaching `server` through `endpoint` with its credentials.
fn s3_options(server: Server, endpoint: &str) -> cairn_repository::s3::S3Options {
    let (id, secret) = server.credentials();
    cairn_repository::s3::S3Options {
        endpoint: Some(endpoint.to_string()),
        path_style: true,
        allow_http: true,
        credentials: Some((id.into(), secret.into())),
        ..Default::default()
    }
}

/// Every object of the repository at `url`, with its size, as the server
/// holds it (read with full rights, past the proxy).
fn objects(server: Server, url: &str) -> BTreeSet<(String, u64)> {
    let store = cairn_repository::s3::store(url, &s3_options(server, server.endpoint())).unwrap();
    let mut all = BTreeSet::new();
    for kind in ObjectKind::ALL {
        for o in store.list(kind).unwrap().objects {
            all.insert((kind.path(&o.name), o.size));
        }
    }
    all
}

fn locks(all: &BTreeSet<(String, u64)>) -> usize {
    all.iter().filter(|(p, _)| p.starts_with("locks/")).count()
}

/// The proxy refuses what the README's bucket policy refuses: a plain PUT,
/// a create-only PUT of a key that exists (412), a DELETE.
fn proxy_models_the_policy(server: Server, endpoint: &str, url: &str) {
    use object_store::{ObjectStoreExt, PutMode, PutOptions};
    let opts = cairn_repository::s3::S3Options {
        max_retries: Some(0),
        ..s3_options(server, endpoint)
    };
    let raw = cairn_repository::s3::object_store(url, &opts).unwrap();
    let store = cairn_repository::Store::remote(raw.clone(), url.to_string()).unwrap();
    let path = object_store::path::Path::from("probe/object");
    let create = || PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    store
        .block_on(raw.put_opts(&path, "a".into(), create()))
        .unwrap();
    let again = store.block_on(raw.put_opts(&path, "b".into(), create()));
    assert!(
        matches!(again, Err(object_store::Error::AlreadyExists { .. })),
        "{again:?}"
    );
    let plain = store.block_on(raw.put(&path, "c".into()));
    assert!(
        matches!(plain, Err(object_store::Error::PermissionDenied { .. })),
        "{plain:?}"
    );
    let delete = store.block_on(raw.delete(&path));
    assert!(
        matches!(delete, Err(object_store::Error::PermissionDenied { .. })),
        "{delete:?}"
    );
    // Taken away past the proxy, so the repository's listing is clean.
    let direct =
        cairn_repository::s3::object_store(url, &s3_options(server, server.endpoint())).unwrap();
    store.block_on(direct.delete(&path)).unwrap();
}

fn a_backup_host_without_delete_rights_backs_up_and_cannot_prune(server: Server) {
    let url = format!("s3://{}/protected", server.bucket());
    // The maintenance host: full rights.
    let maintenance = s3_env(server, server.endpoint(), &url);
    maintenance.ok(&["init", "--kdf-memory-kib", "256", "--pack-size", "256KiB"]);
    // The backup host: create-only, no deletes.
    let proxy = FaultProxy::start(
        server.endpoint(),
        FaultPlan {
            create_only: true,
            ..FaultPlan::default()
        },
    );
    let host = s3_env(server, &proxy.endpoint, &url);
    proxy_models_the_policy(server, &proxy.endpoint, &url);
    let (faults_before, deletes_before) = (
        proxy.faults.load(Ordering::SeqCst),
        proxy.counts.now().delete,
    );
    let src = host.path("src");
    generate_tree(
        &src,
        TreeSpec {
            small_files: 60,
            large_files: 2,
            large_size: 600_000,
            seed: 161,
        },
    );

    // Backups (the second deduplicates against the first), a log push, a
    // recorded verification and account events: all through the proxy.
    host.ok(&["backup", s(&src), "--account", "mail"]);
    mutate_tree(&src, 16);
    host.ok(&["backup", s(&src), "--account", "mail"]);
    let segment = host.path("000000010000000000000001");
    std::fs::write(&segment, vec![7u8; 300_000]).unwrap();
    host.ok(&[
        "log",
        "push",
        "--account",
        "mail",
        "--stream",
        "wal",
        s(&segment),
    ]);
    host.ok(&["verify", "latest", "--account", "mail"]);
    host.ok(&["account", "disable", "old-mail"]);
    host.ok(&["log", "verify", "--read-data"]);
    let target = host.path("restored");
    let latest = format!("latest:{}", s(&src));
    host.ok(&[
        "restore",
        &latest,
        "--account",
        "mail",
        "--target",
        s(&target),
    ]);
    assert_same_tree(&src, &target);
    let refused = proxy.faults.load(Ordering::SeqCst) - faults_before;
    assert!(
        refused > 0,
        "the backup host tried no delete: the test proves nothing"
    );
    assert_eq!(
        proxy.counts.now().delete - deletes_before,
        refused,
        "every delete was refused, and nothing else"
    );
    // Its locks are released, though it could delete none of them: the
    // maintenance host may prune at once.
    let before = objects(server, &url);
    assert!(locks(&before) > 0, "the lock objects stay behind");

    // What deletes fails up front, naming the reason, and changes nothing.
    for args in [
        vec!["prune"],
        vec!["forget", "--keep-last", "1", "--prune"],
        vec!["unlock", "--remove-all"],
        vec!["unlock"],
    ] {
        let out = host.run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(12), "{args:?}: {err}");
        assert!(
            err.contains("may not delete") && err.contains("maintenance host"),
            "{args:?}: {err}"
        );
    }
    let replica = format!("s3://{}/replica", server.bucket());
    let out = host.run(&["sync", "--to", &replica, "--delete"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(12), "{err}");
    assert!(err.contains("sync --delete deletes objects"), "{err}");
    assert!(
        objects(server, &replica).is_empty(),
        "sync copied before refusing"
    );
    assert_eq!(
        objects(server, &url),
        before,
        "a refused command changed the repository"
    );

    // The maintenance host prunes, removing the lock objects left behind.
    let report = maintenance.json(&["forget", "--keep-last", "1", "--prune"]);
    assert!(
        report["prune"]["locks_removed"].as_u64().unwrap() > 0,
        "{report}"
    );
    let after = objects(server, &url);
    assert_eq!(locks(&after), 0, "{after:?}");
    maintenance.ok(&["check", "--read-data"]);
    let again = maintenance.path("again");
    maintenance.ok(&[
        "restore",
        &latest,
        "--account",
        "mail",
        "--target",
        s(&again),
    ]);
    assert_same_tree(&src, &again);
    // And the backup host goes on backing up.
    host.ok(&["backup", s(&src), "--account", "mail"]);
}
on_both!(a_backup_host_without_delete_rights_backs_up_and_cannot_prune);

/// The repository's store as the maintenance host opens it, under its
/// object lock.
fn locked_store(server: Server, url: &str, period_secs: u64) -> cairn_repository::Store {
    use cairn_repository::config::{ObjectLock, ObjectLockMode};
    cairn_repository::s3::store(url, &s3_options(server, server.endpoint()))
        .unwrap()
        .with_object_lock(ObjectLock {
            mode: ObjectLockMode::Governance,
            period_secs,
        })
        .unwrap()
}

fn packs(store: &cairn_repository::Store) -> BTreeSet<String> {
    store
        .list(ObjectKind::Pack)
        .unwrap()
        .objects
        .into_iter()
        .map(|o| o.name)
        .collect()
}

fn until(store: &cairn_repository::Store, pack: &str) -> jiff::Timestamp {
    store
        .retention(ObjectKind::Pack, pack)
        .unwrap()
        .unwrap()
        .until
        .unwrap()
}

/// S3 object lock on moto (s3rver has none): every object that holds
/// backups is written retained; a deletion of a retained version is
/// refused by the server; forget and prune keep what is retained and say
/// so; prune extends the retention of packs still in use; what nothing
/// uses is deleted once its retention has passed.
#[test]
fn object_lock_keeps_what_is_retained_and_extends_what_is_in_use() {
    let server = Server::Moto;
    const PERIOD: u64 = 8;
    let plain = format!("s3://{}/repo", server.bucket());
    let refused = s3_env(server, server.endpoint(), &plain).run(&[
        "init",
        "--kdf-memory-kib",
        "256",
        "--object-lock",
        "8s",
    ]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_ne!(refused.status.code(), Some(0));
    assert!(err.contains("does not have object lock enabled"), "{err}");

    let url = format!("s3://{}-ol/repo", server.bucket());
    let env = s3_env(server, server.endpoint(), &url);
    let init = env.json(&[
        "init",
        "--kdf-memory-kib",
        "256",
        "--pack-size",
        "256KiB",
        "--create-bucket",
        "--object-lock",
        "8s",
    ]);
    assert_eq!(init["object_lock"]["period_secs"], PERIOD, "{init}");
    assert_eq!(init["object_lock"]["mode"], "governance", "{init}");
    let src = env.path("src");
    generate_tree(
        &src,
        TreeSpec {
            small_files: 40,
            large_files: 2,
            large_size: 500_000,
            seed: 162,
        },
    );
    env.ok(&["backup", s(&src)]);
    let written = jiff::Timestamp::now();
    let store = locked_store(server, &url, PERIOD);
    let first = packs(&store);
    let old = first.iter().next().unwrap().clone();
    let old_until = until(&store, &old);
    let period = jiff::SignedDuration::from_secs(PERIOD as i64);
    assert!(old_until > written + period - jiff::SignedDuration::from_secs(2));

    // The server refuses to delete a retained version; cairn does not
    // even try to hide it behind a delete marker.
    let version = store
        .retention(ObjectKind::Pack, &old)
        .unwrap()
        .unwrap()
        .version
        .unwrap();
    let err = store
        .delete_version(ObjectKind::Pack, &old, &version)
        .unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    assert!(
        store
            .delete(ObjectKind::Pack, &old)
            .unwrap_err()
            .is_retained()
    );
    assert!(packs(&store).contains(&old));

    // A password change would leave the old key behind: refused up front.
    let keys_before = env.json(&["key", "list"]);
    let newpw = env.path("newpw");
    std::fs::write(&newpw, "another password\n").unwrap();
    let out = env.run(&["key", "passwd", "--new-password-file", s(&newpw)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(err.contains("retained by object lock until"), "{err}");
    assert_eq!(env.json(&["key", "list"]), keys_before);

    // A second snapshot shares most data; a forget of the first keeps it
    // while its manifest is retained, and says so.
    mutate_tree(&src, 17);
    env.ok(&["backup", s(&src)]);
    let forget = [
        "forget",
        "--keep-last",
        "1",
        "--prune",
        "--delete-after",
        "0",
        "--max-unused",
        "0%",
    ];
    let report = env.json(&forget);
    assert_eq!(report["retained"], 1, "{report}");
    assert_eq!(env.json(&["snapshots"]).as_array().unwrap().len(), 2);

    // Past half the period, prune extends the retention of packs in use.
    std::thread::sleep(std::time::Duration::from_millis(PERIOD * 1000 / 2 + 500));
    let report = env.json(&forget);
    assert!(
        report["prune"]["retention_extended"].as_u64().unwrap() > 0,
        "{report}"
    );
    assert!(
        until(&store, &old) > old_until,
        "the old pack in use was not extended"
    );

    // Past the first manifest's retention, forget removes it; packs that
    // only it used wait while their retention (extended while in use)
    // lasts.
    let due = written + period + jiff::SignedDuration::from_secs(2);
    while jiff::Timestamp::now() < due {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let report = env.json(&forget);
    assert_eq!(report["retained"], 0, "{report}");
    assert_eq!(report["removed"], 1, "{report}");
    let retained = report["prune"]["packs_retained"].as_u64().unwrap();
    assert!(retained > 0, "{report}");
    let waiting = packs(&store);

    // Once that has passed, they go, for good.
    std::thread::sleep(std::time::Duration::from_millis(PERIOD * 1000 + 1000));
    let report = env.json(&["prune", "--delete-after", "0", "--max-unused", "0%"]);
    assert_eq!(report["packs_retained"], 0, "{report}");
    assert!(
        report["packs_deleted"].as_u64().unwrap() >= retained,
        "{report}"
    );
    assert!(packs(&store).len() < waiting.len());
    env.ok(&["check", "--read-data"]);
    let target = env.path("restored");
    env.ok(&[
        "restore",
        &format!("latest:{}", s(&src)),
        "--target",
        s(&target),
    ]);
    assert_same_tree(&src, &target);
}

/// Put-only keys (README, "Put-only keys"), on a backup host that may not
/// delete either: it backs up and pushes logs, reads nothing, and is
/// refused every other command with status 12; the maintenance host's full
/// key restores everything byte for byte, checks it and applies retention.
fn a_put_only_key_adds_backups_and_reads_nothing(server: Server) {
    let url = format!("s3://{}/put-only", server.bucket());
    let maintenance = s3_env(server, server.endpoint(), &url);
    maintenance.ok(&["init", "--kdf-memory-kib", "256", "--pack-size", "256KiB"]);
    let src = maintenance.path("src");
    generate_tree(
        &src,
        TreeSpec {
            small_files: 40,
            large_files: 2,
            large_size: 400_000,
            seed: 163,
        },
    );
    maintenance.ok(&["backup", s(&src), "--account", "mail"]);
    let put_password = maintenance.path("put-password");
    std::fs::write(&put_password, "only puts\n").unwrap();
    let added = maintenance.json(&[
        "key",
        "add",
        "--put-only",
        "--account",
        "mail",
        "--new-password-file",
        s(&put_password),
    ]);
    assert_eq!(added["action"], "added", "{added}");
    let keys = maintenance.json(&["key", "list"]);
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .any(|k| k["put_only"] == serde_json::json!(["mail"])),
        "{keys}"
    );

    // The backup host: the put-only key, through a proxy refusing deletes
    // and overwrites.
    let proxy = FaultProxy::start(
        server.endpoint(),
        FaultPlan {
            create_only: true,
            ..FaultPlan::default()
        },
    );
    let host = s3_env(server, &proxy.endpoint, &url);
    std::fs::write(host.path("password"), "only puts\n").unwrap();
    mutate_tree(&src, 17);
    let first = host.json(&["backup", s(&src), "--account", "mail"]);
    let second = host.json(&["backup", s(&src), "--account", "mail"]);
    // Only a directory above the source may differ (`/tmp` changes
    // under running tests); no file content is stored again.
    assert!(
        second["summary"]["raw_bytes_added"].as_u64().unwrap() < 4096,
        "the second put-only backup stores nothing new: {second}"
    );
    let segment = host.path("000000010000000000000001");
    let wal: Vec<u8> = (0..400_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&segment, &wal).unwrap();
    let log_push = [
        "log",
        "push",
        "--account",
        "mail",
        "--stream",
        "wal",
        s(&segment),
    ];
    host.ok(&log_push);
    host.ok(&log_push); // a retry: recognised, nothing stored twice
    let out = host.run(&["backup", s(&src), "--account", "other"]);
    assert_eq!(out.status.code(), Some(12));
    let target = host.path("restored");
    for args in [
        vec!["restore", "latest", "--target", s(&target)],
        vec!["ls", "latest"],
        vec!["cat", "config"],
        vec!["snapshots"],
        vec!["check"],
        vec![
            "log",
            "get",
            "--account",
            "mail",
            "--stream",
            "wal",
            "000000010000000000000001",
            s(&target),
        ],
        vec!["forget", "--keep-last", "1"],
        vec!["prune"],
        vec!["key", "add", "--new-password-file", s(&put_password)],
    ] {
        let out = host.run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(12), "{args:?}: {err}");
        assert!(err.contains("put-only key"), "{args:?}: {err}");
    }
    assert!(!target.exists(), "a refused restore wrote something");

    // With only that key, nothing stored opens: every object is tried
    // under every envelope kind, and no plaintext sits in any of them.
    let store = cairn_repository::s3::store(&url, &s3_options(server, server.endpoint())).unwrap();
    let put = cairn_repository::Repository::open(
        store.clone(),
        b"only puts",
        cairn_repository::repo::CacheLocation::InMemory,
    )
    .unwrap();
    let needle = std::fs::read(src.join("db/large-1.bin")).unwrap();
    let mut tried = 0;
    for kind in ObjectKind::ALL {
        let names: Vec<String> = match kind {
            ObjectKind::Key => continue,
            ObjectKind::Config => vec!["config".into()],
            _ => store
                .list(kind)
                .unwrap()
                .objects
                .into_iter()
                .map(|o| o.name)
                .collect(),
        };
        for name in names {
            let bytes = store.get(kind, &name).unwrap();
            for sealed in cairn_repository::crypto::Sealed::ALL {
                if sealed == cairn_repository::crypto::Sealed::Lock {
                    continue;
                }
                assert!(
                    cairn_repository::crypto::open_object(put.keys(), sealed, &bytes, &name)
                        .is_err(),
                    "{} opened as {sealed:?}",
                    kind.path(&name)
                );
            }
            assert!(
                !bytes.windows(64).any(|w| w == &needle[1000..1064]),
                "{} holds plaintext",
                kind.path(&name)
            );
            tried += 1;
        }
    }
    assert!(tried > 8, "{tried}");

    // The full key reads it all.
    let snaps = maintenance.json(&["snapshots"]);
    assert_eq!(snaps.as_array().unwrap().len(), 3, "{snaps}");
    let again = maintenance.path("again");
    let id = second["id"].as_str().unwrap();
    maintenance.ok(&[
        "restore",
        &format!("{id}:{}", s(&src)),
        "--target",
        s(&again),
    ]);
    assert_same_tree(&src, &again);
    let got = maintenance.path("wal-back");
    maintenance.ok(&[
        "log",
        "get",
        "--account",
        "mail",
        "--stream",
        "wal",
        "000000010000000000000001",
        s(&got),
    ]);
    assert_eq!(std::fs::read(&got).unwrap(), wal);
    maintenance.ok(&["log", "verify", "--read-data"]);
    maintenance.ok(&["check", "--read-data"]);
    // Retention with the full key: the put-only snapshots are kept or
    // forgotten like any other, and prune keeps what stays readable.
    maintenance.ok(&["forget", "--keep-last", "1", "--prune"]);
    maintenance.ok(&["check", "--read-data"]);
    let last = maintenance.path("last");
    maintenance.ok(&[
        "restore",
        &format!("{id}:{}", s(&src)),
        "--target",
        s(&last),
    ]);
    assert_same_tree(&src, &last);
    drop(first);
}
on_both!(a_put_only_key_adds_backups_and_reads_nothing);
