//! End-to-end against two real S3-compatible servers on loopback (moto and
//! s3rver; every test but the credentials one runs on both):
//! the storage conformance suite, repositories on S3, sync to S3 and back,
//! deletions with and without a grace period, doubtful listings, faults
//! (errors, throttling, dropped and stalled connections, truncated uploads),
//! an interrupted sync, and damage behind cairn's back.

// Tests report failures by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cairn_e2e::proxy::{FaultPlan, FaultProxy};
use cairn_e2e::s3::Server;
use cairn_e2e::{Env, TreeSpec, assert_same_tree, generate_tree, mutate_tree, on_both, s3, s3_env};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A local repository that knows how to reach the test server.
fn local_env(server: Server, endpoint: &str) -> Env {
    Env::new().with_vars(server.cairn_env(endpoint)).init()
}

/// A local repository (see `local_env`) holding one backup of a generated
/// tree; the tree is `src` in the environment.
fn backed_up(server: Server, endpoint: &str, spec: TreeSpec) -> (Env, std::path::PathBuf) {
    let local = local_env(server, endpoint);
    let src = local.path("src");
    generate_tree(&src, spec);
    local.ok(&["backup", s(&src)]);
    (local, src)
}

fn s3_options(server: Server) -> cairn_repository::s3::S3Options {
    let (id, secret) = server.credentials();
    cairn_repository::s3::S3Options {
        endpoint: Some(server.endpoint().to_string()),
        path_style: true,
        allow_http: true,
        credentials: Some((id.into(), secret.into())),
        ..Default::default()
    }
}

fn remote_store(server: Server, url: &str) -> cairn_repository::Store {
    cairn_repository::s3::store(url, &s3_options(server)).unwrap()
}

fn snapshot_ids(env: &Env) -> Vec<String> {
    let mut v: Vec<String> = env
        .json(&["snapshots"])
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

fn the_s3_backend_meets_the_storage_contract(server: Server) {
    let bucket = server.bucket();
    let url = format!("s3://{bucket}/conformance");
    let raw = cairn_repository::s3::object_store(&url, &s3_options(server)).unwrap();
    let store = cairn_repository::Store::remote(raw.clone(), url).unwrap();
    cairn_testkit::conformance::run(
        &store,
        raw.as_ref(),
        &format!("s3 ({})", server.name()),
        cairn_testkit::conformance::Capabilities {
            many_objects: 1100,
            one_byte_range_at_zero: server != Server::S3rver,
            create_if_absent: server != Server::S3rver,
        },
    );
}
on_both!(the_s3_backend_meets_the_storage_contract);

/// A pack larger than the multipart threshold goes up in parts; servers
/// answer with the multipart ETag (moto) or the plain MD5 (s3rver).
fn large_packs_go_up_in_parts_whatever_etag_the_server_gives(server: Server) {
    let endpoint = server.endpoint();
    let local = Env::new().with_vars(server.cairn_env(endpoint));
    local.ok(&["init", "--kdf-memory-kib", "256", "--pack-size", "64MiB"]);
    let src = local.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("random.bin"), bytes_of(80 << 20)).unwrap();
    local.ok(&["backup", s(&src)]);
    let url = format!("s3://{}/large", server.bucket());
    let report = local.json(&["sync", "--to", &url]);
    assert_eq!(report["resent"], 0, "{report}");
    local.ok(&["sync", "--to", &url, "--verify"]);
    let remote = s3_env(server, endpoint, &url);
    remote.ok(&["check", "--read-data"]);
}
on_both!(large_packs_go_up_in_parts_whatever_etag_the_server_gives);

fn a_repository_on_s3_and_sync_there_and_back(server: Server) {
    let endpoint = server.endpoint();
    let url = format!("s3://{}/offsite", server.bucket());
    let (local, src) = backed_up(
        server,
        endpoint,
        TreeSpec {
            small_files: 60,
            large_files: 3,
            large_size: 1 << 20,
            seed: 61,
        },
    );

    // Sync; a second sync transfers nothing.
    let first = local.json(&["sync", "--to", &url]);
    assert!(
        first["copied"]["data"]["objects"].as_u64().unwrap() > 2,
        "{first}"
    );
    let again = local.json(&["sync", "--to", &url]);
    assert!(again["copied"].as_object().unwrap().is_empty(), "{again}");

    // Copying needs no password (an offsite replicator need not hold the
    // key); deleting does, and says so.
    let no_password = |extra: &[&str]| {
        let mut cmd = local.cairn();
        cmd.env_remove("CAIRN_PASSWORD_FILE")
            .args(["sync", "--to", &url])
            .args(extra)
            .stdin(std::process::Stdio::null());
        cmd.output().unwrap()
    };
    let out = no_password(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = no_password(&["--delete"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("password"), "{}", stderr(&out));
    local.ok(&["sync", "--to", &url, "--verify"]);

    // Restore straight from S3 into an empty directory.
    let remote = s3_env(server, endpoint, &url);
    let r1 = remote.path("r1");
    remote.ok(&[
        "restore",
        &format!("latest:{}", s(&src)),
        "--target",
        s(&r1),
    ]);
    assert_same_tree(&src, &r1);
    remote.ok(&["check", "--read-data"]);

    // Change, back up, forget and prune locally; sync with --delete.
    let before = local.path("before");
    cairn_e2e::copy_tree(&src, &before);
    mutate_tree(&src, 3);
    local.ok(&["backup", s(&src)]);
    let policy = local.path("p.toml");
    std::fs::write(&policy, "[default]\nkeep-last = 1\n").unwrap();
    local.ok(&[
        "forget",
        "--policy",
        s(&policy),
        "--prune",
        "--max-unused",
        "0%",
    ]);
    let synced = local.json(&["sync", "--to", &url, "--delete"]);
    assert!(
        synced["deleted"]["snapshots"]["objects"].as_u64().unwrap() >= 1,
        "{synced}"
    );
    assert_eq!(snapshot_ids(&remote), snapshot_ids(&local));
    remote.ok(&["check", "--read-data"]);
    local.ok(&["sync", "--to", &url, "--verify"]);

    // Every command works on the S3 repository itself.
    remote.ok(&["backup", s(&src), "--account", "direct"]);
    remote.ok(&[
        "forget",
        "--policy",
        s(&policy),
        "--account",
        "direct",
        "--prune",
    ]);
    remote.ok(&["stats"]);

    // After a disaster: pull the remote into an empty local repository.
    let pulled = Env::new().with_vars(server.cairn_env(endpoint));
    pulled.ok(&["sync", "--from", &url]);
    // Key files arrive readable by their owner only, as `init` writes them.
    for key in std::fs::read_dir(pulled.repo().join("keys")).unwrap() {
        use std::os::unix::fs::PermissionsExt;
        let mode = key.unwrap().metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "a pulled key file has mode {mode:o}");
    }
    pulled.ok(&["check", "--read-data"]);
    let r2 = pulled.path("r2");
    pulled.ok(&[
        "restore",
        &format!("latest:{}", s(&src)),
        "--target",
        s(&r2),
        "--account",
        "default",
    ]);
    assert_same_tree(&src, &r2);

    // The destination must be the same repository.
    let other = local_env(server, endpoint);
    let out = other.run(&["sync", "--to", &url]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("holds another repository"),
        "{}",
        stderr(&out)
    );
}
on_both!(a_repository_on_s3_and_sync_there_and_back);

fn deletions_wait_for_their_grace_period_and_doubtful_listings_delete_nothing(server: Server) {
    let endpoint = server.endpoint();
    let url = format!("s3://{}/grace", server.bucket());
    let (local, src) = backed_up(
        server,
        endpoint,
        TreeSpec {
            small_files: 20,
            large_files: 2,
            large_size: 400_000,
            seed: 62,
        },
    );
    mutate_tree(&src, 4);
    local.ok(&["backup", s(&src)]);
    local.ok(&["sync", "--to", &url]);
    let remote = s3_env(server, endpoint, &url);
    assert_eq!(snapshot_ids(&remote).len(), 2);

    let policy = local.path("p.toml");
    std::fs::write(&policy, "[default]\nkeep-last = 1\n").unwrap();
    // Deleting at once: every pack left is one the kept snapshot needs.
    local.ok(&[
        "forget",
        "--policy",
        s(&policy),
        "--prune",
        "--max-unused",
        "0%",
        "--delete-after",
        "0",
    ]);
    let first = local.json(&["sync", "--to", &url, "--delete", "--delete-after", "3s"]);
    assert!(first["pending_deletions"].as_u64().unwrap() >= 2, "{first}");
    assert!(first["deleted"].as_object().unwrap().is_empty(), "{first}");
    assert_eq!(
        snapshot_ids(&remote).len(),
        2,
        "still there during the grace period"
    );
    remote.ok(&["check"]);
    std::thread::sleep(Duration::from_millis(3200));
    let second = local.json(&["sync", "--to", &url, "--delete", "--delete-after", "3s"]);
    assert!(
        second["deleted"]["snapshots"]["objects"].as_u64().unwrap() >= 1,
        "{second}"
    );
    assert_eq!(second["pending_deletions"], 0);
    assert_eq!(snapshot_ids(&remote), snapshot_ids(&local));
    remote.ok(&["check", "--read-data"]);

    // A source listing that lacks packs its snapshots need deletes nothing.
    let remote_before = remote_store(server, &url)
        .list(cairn_repository::ObjectKind::Pack)
        .unwrap()
        .objects
        .len();
    let pack = std::fs::read_dir(local.repo().join("data"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let pack = std::fs::read_dir(pack)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::remove_file(&pack).unwrap();
    let out = local.run(&["sync", "--to", &url, "--delete"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("refusing to delete anything"),
        "{}",
        stderr(&out)
    );
    let remote_after = remote_store(server, &url)
        .list(cairn_repository::ObjectKind::Pack)
        .unwrap()
        .objects
        .len();
    assert_eq!(remote_before, remote_after);
}
on_both!(deletions_wait_for_their_grace_period_and_doubtful_listings_delete_nothing);

fn a_running_prune_blocks_deletion_but_not_copying(server: Server) {
    let endpoint = server.endpoint();
    let url = format!("s3://{}/during-prune", server.bucket());
    let (local, src) = backed_up(
        server,
        endpoint,
        TreeSpec {
            small_files: 30,
            large_files: 2,
            large_size: 600_000,
            seed: 64,
        },
    );
    mutate_tree(&src, 5);
    local.ok(&["backup", s(&src)]);
    local.ok(&["sync", "--to", &url]);
    let policy = local.path("p.toml");
    std::fs::write(&policy, "[default]\nkeep-last = 1\n").unwrap();
    local.ok(&["forget", "--policy", s(&policy)]);

    // A prune that pauses, holding its exclusive lock, after writing its
    // new index objects and before deleting the old ones and the packs.
    let prune = local
        .cairn()
        .env("CAIRN_FAILPOINT", "prune-after-index-write")
        .env("CAIRN_FAILPOINT_PAUSE_MS", "4000")
        .args(["prune", "--max-unused", "0%"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    local.wait_for_lock();
    // Deleting waits for the prune: without --retry-lock it refuses.
    let out = local.run(&["sync", "--to", &url, "--delete"]);
    assert_eq!(out.status.code(), Some(11), "{}", stderr(&out));
    // Copying takes no lock and leaves a consistent replica.
    local.ok(&["sync", "--to", &url]);
    let remote = s3_env(server, endpoint, &url);
    remote.ok(&["check"]);
    // Waiting for the lock, deletion runs once the prune is done.
    let synced = local.json(&["sync", "--to", &url, "--delete", "--retry-lock", "60s"]);
    let pruned = prune.wait_with_output().unwrap();
    assert!(pruned.status.success(), "{}", stderr(&pruned));
    assert!(
        synced["deleted"]["snapshots"]["objects"].as_u64().unwrap() >= 1,
        "{synced}"
    );
    assert_eq!(snapshot_ids(&remote), snapshot_ids(&local));
    remote.ok(&["check", "--read-data"]);
    local.ok(&["sync", "--to", &url, "--verify"]);
}
on_both!(a_running_prune_blocks_deletion_but_not_copying);

fn faults_are_retried_and_truncated_uploads_caught(server: Server) {
    let endpoint = server.endpoint();
    let (local, _) = backed_up(
        server,
        endpoint,
        TreeSpec {
            small_files: 80,
            large_files: 3,
            large_size: 1 << 20,
            seed: 63,
        },
    );

    // Errors, throttling, dropped and stalled connections.
    let url = format!("s3://{}/faults", server.bucket());
    let proxy = FaultProxy::start(
        endpoint,
        FaultPlan {
            slowdown_every: Some(5),
            error_every: Some(7),
            drop_every: Some(11),
            stall_every: Some((13, Duration::from_millis(1500))),
            ..FaultPlan::default()
        },
    );
    let through = Env::new().with_vars(server.cairn_env(&proxy.endpoint));
    std::fs::copy(local.path("password"), through.path("password")).unwrap();
    let out = through
        .cairn()
        .env("CAIRN_REPOSITORY", local.repo())
        .args(["sync", "--to", &url, "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(proxy.faults.load(std::sync::atomic::Ordering::SeqCst) > 5);
    local.ok(&["sync", "--to", &url, "--verify"]);

    // An upload the server acknowledged but stored truncated is caught and
    // sent again.
    let url = format!("s3://{}/truncated", server.bucket());
    let proxy = FaultProxy::start(
        endpoint,
        FaultPlan {
            truncate_put: Some(2),
            ..FaultPlan::default()
        },
    );
    let out = through
        .cairn()
        .env("CAIRN_REPOSITORY", local.repo())
        .env("CAIRN_S3_ENDPOINT", &proxy.endpoint)
        .args(["sync", "--to", &url, "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["resent"], 1, "{report}");
    local.ok(&["sync", "--to", &url, "--verify"]);

    // A server that keeps failing: a clear error once retries are spent, and
    // nothing half-written visible.
    let url = format!("s3://{}/failing", server.bucket());
    let proxy = FaultProxy::start(
        endpoint,
        FaultPlan {
            error_every: Some(3),
            ..FaultPlan::default()
        },
    );
    let out = through
        .cairn()
        .env("CAIRN_REPOSITORY", local.repo())
        .env("CAIRN_S3_ENDPOINT", &proxy.endpoint)
        .env("CAIRN_S3_RETRIES", "0")
        .args(["sync", "--to", &url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("sync from") && err.contains("500"), "{err}");
    let remote = s3_env(server, endpoint, &url);
    if remote.run(&["snapshots"]).status.success() {
        remote.ok(&["check"]);
    }
}
on_both!(faults_are_retried_and_truncated_uploads_caught);

fn an_interrupted_sync_resumes_without_sending_again_what_arrived(server: Server) {
    let endpoint = server.endpoint();
    let (local, _) = backed_up(
        server,
        endpoint,
        TreeSpec {
            small_files: 100,
            large_files: 4,
            large_size: 1 << 20,
            seed: 64,
        },
    );
    let url = format!("s3://{}/resume", server.bucket());
    // Slow every request down so the kill lands mid-sync.
    let proxy = FaultProxy::start(
        endpoint,
        FaultPlan {
            stall_every: Some((1, Duration::from_millis(150))),
            ..FaultPlan::default()
        },
    );
    let mut child = local
        .cairn()
        .env("CAIRN_S3_ENDPOINT", &proxy.endpoint)
        .args(["sync", "--to", &url, "--concurrency", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    child.kill().unwrap();
    child.wait().unwrap();
    // An upload the proxy had already taken still reaches the server:
    // let it land before counting what arrived.
    drop(proxy);
    std::thread::sleep(Duration::from_millis(1500));

    // The destination shows no incomplete snapshot.
    let remote = s3_env(server, endpoint, &url);
    if remote.run(&["snapshots"]).status.success() {
        remote.ok(&["check", "--read-data"]);
    }
    let total = local.json(&["sync", "--to", &url, "--dry-run"]);
    let arrived = total["present"]["objects"].as_u64().unwrap();
    assert!(arrived > 0, "the first run copied something: {total}");
    let resumed = local.json(&["sync", "--to", &url]);
    assert_eq!(
        resumed["present"]["objects"].as_u64().unwrap(),
        arrived,
        "{resumed}"
    );
    remote.ok(&["check", "--read-data"]);
    local.ok(&["sync", "--to", &url, "--verify"]);
}
on_both!(an_interrupted_sync_resumes_without_sending_again_what_arrived);

fn damage_behind_cairns_back_is_reported_and_repaired(server: Server) {
    let endpoint = server.endpoint();
    let (local, _) = backed_up(
        server,
        endpoint,
        TreeSpec {
            small_files: 30,
            large_files: 3,
            large_size: 500_000,
            seed: 65,
        },
    );
    let url = format!("s3://{}/damaged", server.bucket());
    local.ok(&["sync", "--to", &url]);

    let store = remote_store(server, &url);
    let packs = store
        .list(cairn_repository::ObjectKind::Pack)
        .unwrap()
        .objects;
    assert!(packs.len() >= 2);
    store
        .delete(cairn_repository::ObjectKind::Pack, &packs[0].name)
        .unwrap();
    let junk = bytes_of(packs[1].size as usize);
    store
        .put(
            cairn_repository::ObjectKind::Pack,
            &packs[1].name,
            junk.into(),
        )
        .unwrap();

    let out = local.run(&["sync", "--to", &url, "--verify", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["missing"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["corrupt"].as_array().unwrap().len(), 1, "{report}");
    let remote = s3_env(server, endpoint, &url);
    let out = remote.run(&["check", "--read-data"]);
    assert_eq!(out.status.code(), Some(1));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("damaged: snapshot"), "{report}");

    // The missing pack is sent again; the corrupt one keeps its size, so a
    // plain sync trusts it: verify found it, and deleting it makes sync
    // send it again.
    store
        .delete(cairn_repository::ObjectKind::Pack, &packs[1].name)
        .unwrap();
    local.ok(&["sync", "--to", &url]);
    local.ok(&["sync", "--to", &url, "--verify"]);
    remote.ok(&["check", "--read-data"]);
}
on_both!(damage_behind_cairns_back_is_reported_and_repaired);

fn bytes_of(len: usize) -> Vec<u8> {
    cairn_e2e::Rng::new(99).bytes(len)
}

#[test]
fn credentials_come_from_the_aws_profile_files() {
    let endpoint = s3::endpoint();
    let url = format!("s3://{}/profiles", s3::bucket());
    let server = vec![
        ("CAIRN_S3_ENDPOINT", endpoint.to_string()),
        ("CAIRN_S3_PATH_STYLE", "true".into()),
        ("CAIRN_S3_ALLOW_HTTP", "true".into()),
    ];
    let env = Env::new()
        .with_vars(server.clone())
        .with_repo_url(url.clone());
    let creds = env.path("aws-credentials");
    std::fs::write(
        &creds,
        "[default]\n# nothing here\n\n[backup-team]\naws_access_key_id = AKIDTEAM\naws_secret_access_key = team-secret\n",
    )
    .unwrap();
    let no_config = env.path("no-config").display().to_string();
    let env = env
        .with_vars(vec![
            ("AWS_SHARED_CREDENTIALS_FILE", creds.display().to_string()),
            ("AWS_CONFIG_FILE", no_config),
            ("AWS_PROFILE", "backup-team".to_string()),
        ])
        .init();
    assert!(snapshot_ids(&env).is_empty());
    // The same repository with no credentials anywhere: a clear failure
    // that says where credentials were looked for (instance metadata is
    // ruled out, so that the test does not depend on the network).
    let env2 = Env::new()
        .with_vars(server)
        .with_vars(vec![("AWS_EC2_METADATA_DISABLED", "true".to_string())])
        .with_repo_url(url);
    let out = env2.run(&["snapshots"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no S3 credentials in the environment")
            && stderr(&out).contains("AWS_EC2_METADATA_DISABLED"),
        "{}",
        stderr(&out)
    );
}

fn a_missing_bucket_is_named(server: Server) {
    let env = Env::new()
        .with_vars(server.cairn_env(server.endpoint()))
        .with_repo_url("s3://cairn-no-such-bucket/repo".to_string());
    let out = env.run(&["init", "--kdf-memory-kib", "256"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the bucket cairn-no-such-bucket does not exist")
            && stderr(&out).contains("cairn init --create-bucket"),
        "{}",
        stderr(&out)
    );
    // Opening it says the same, with "no repository"'s exit status.
    let out = env.run(&["snapshots"]);
    assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the bucket cairn-no-such-bucket does not exist"),
        "{}",
        stderr(&out)
    );
    // `init --create-bucket` makes bucket and repository; a second
    // repository in the same bucket finds it there.
    let name = format!("cairn-made-{}", std::process::id());
    let made = Env::new()
        .with_vars(server.cairn_env(server.endpoint()))
        .with_repo_url(format!("s3://{name}/one"));
    made.ok(&["init", "--create-bucket", "--kdf-memory-kib", "256"]);
    assert!(snapshot_ids(&made).is_empty());
    let second = Env::new()
        .with_vars(server.cairn_env(server.endpoint()))
        .with_repo_url(format!("s3://{name}/two"));
    second.ok(&["init", "--create-bucket", "--kdf-memory-kib", "256"]);
    assert!(snapshot_ids(&second).is_empty());
    // Plain http without --s3-allow-http: one sentence that says what to
    // add, not the transport's chain five times.
    let out = made
        .cairn()
        .env("CAIRN_S3_ALLOW_HTTP", "false")
        .arg("snapshots")
        .output()
        .unwrap();
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("is plain http://: allow it with --s3-allow-http"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");
}
on_both!(a_missing_bucket_is_named);
