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
use cairn_e2e::{Env, TreeSpec, assert_same_tree, generate_tree, mutate_tree};
use cairn_repository::ObjectKind;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::Ordering;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Each test body runs against both servers: moto and s3rver.
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[test]
            fn moto() {
                super::$name(super::Server::Moto)
            }
            #[test]
            fn s3rver() {
                super::$name(super::Server::S3rver)
            }
        }
    };
}

fn s3_env(server: Server, endpoint: &str, url: &str) -> Env {
    Env::new()
        .with_vars(server.cairn_env(endpoint))
        .with_repo_url(url.to_string())
}

/// Every object of the repository at `url`, with its size, as the server
/// holds it (read with full rights, past the proxy).
fn objects(server: Server, url: &str) -> BTreeSet<(String, u64)> {
    let (id, secret) = server.credentials();
    let opts = cairn_repository::s3::S3Options {
        endpoint: Some(server.endpoint().to_string()),
        path_style: true,
        allow_http: true,
        credentials: Some((id.into(), secret.into())),
        ..Default::default()
    };
    let store = cairn_repository::s3::store(url, &opts).unwrap();
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
    let (id, secret) = server.credentials();
    let opts = cairn_repository::s3::S3Options {
        endpoint: Some(endpoint.to_string()),
        path_style: true,
        allow_http: true,
        credentials: Some((id.into(), secret.into())),
        max_retries: Some(0),
        ..Default::default()
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
    let direct = cairn_repository::s3::object_store(url, &{
        let mut o = opts.clone();
        o.endpoint = Some(server.endpoint().to_string());
        o
    })
    .unwrap();
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
