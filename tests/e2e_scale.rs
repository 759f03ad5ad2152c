//! End-to-end: how cairn behaves as the repository and the number of hosts
//! grow. The local snapshot cache agrees with the store after other
//! processes (other caches) add and forget snapshots; sixteen hosts back up
//! into one S3 repository at once while a seventeenth forgets and prunes,
//! every snapshot restores, and the requests one nightly backup makes stay
//! bounded (counted by a proxy in front of each host).

// Tests report failures by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cairn_e2e::proxy::{Counts, FaultPlan, FaultProxy};
use cairn_e2e::s3::Server;
use cairn_e2e::{Env, TreeSpec, assert_same_tree, copy_tree, generate_tree};
use serde_json::Value;
use std::path::Path;
use std::process::Output;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// (id, account, host, parent) of every snapshot, oldest first.
fn listing(env: &Env, extra: &[&str]) -> Vec<(String, String, String, Option<String>)> {
    let mut args = vec!["snapshots"];
    args.extend_from_slice(extra);
    env.json(&args)
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["id"].as_str().unwrap().to_string(),
                v["account"].as_str().unwrap().to_string(),
                v["host"].as_str().unwrap().to_string(),
                v["parent"].as_str().map(str::to_string),
            )
        })
        .collect()
}

fn ids(rows: &[(String, String, String, Option<String>)]) -> Vec<String> {
    let mut v: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    v.sort();
    v
}

#[test]
fn cached_listings_agree_with_the_store_when_other_hosts_add_and_forget() {
    let a = Env::with_repo();
    let src = a.path("src");
    generate_tree(&src, TreeSpec::tiny(1));
    // Host B: the same repository, its own cache (another machine).
    let b_cache = a.path("cache-b");
    let on_b = |args: &[&str]| {
        let mut full = vec!["--cache-dir", s(&b_cache)];
        full.extend_from_slice(args);
        a.ok(&full)
    };
    let uncached = |extra: &[&str]| {
        let mut args = vec!["--no-cache"];
        args.extend_from_slice(extra);
        listing(&a, &args)
    };
    for account in ["one", "two"] {
        for _ in 0..2 {
            a.ok(&["backup", "--host", "a", "--account", account, s(&src)]);
        }
    }
    let first = listing(&a, &[]);
    assert_eq!(first.len(), 4);

    // B adds snapshots and forgets some of A's, among them A's newest of
    // account `one` (its next parent).
    on_b(&["backup", "--host", "b", "--account", "one", s(&src)]);
    on_b(&["backup", "--host", "b", "--account", "three", s(&src)]);
    let newest_one_a = first
        .iter()
        .rev()
        .find(|r| r.1 == "one" && r.2 == "a")
        .unwrap()
        .0
        .clone();
    let oldest_two = first.iter().find(|r| r.1 == "two").unwrap().0.clone();
    on_b(&["forget", &newest_one_a, &oldest_two]);

    // A's cache learns both: what B added and what B forgot.
    let now = listing(&a, &[]);
    assert_eq!(ids(&now), ids(&uncached(&[])));
    assert_eq!(now.len(), 4);
    assert!(!ids(&now).contains(&newest_one_a));
    for account in ["one", "two", "three"] {
        assert_eq!(
            ids(&listing(&a, &["--account", account])),
            ids(&uncached(&["--account", account])),
            "account {account}"
        );
    }

    // A backs up `one`; B forgets that snapshot before A lists again. A's
    // next backup does not take the forgotten snapshot as its parent (its
    // cache still names it): it takes the newest of its own that exists.
    a.ok(&["backup", "--host", "a", "--account", "one", s(&src)]);
    let mine = listing(&a, &["--account", "one", "--host", "a"]);
    let gone = mine.last().unwrap().0.clone();
    let fallback = mine[mine.len() - 2].0.clone();
    a.ok(&["backup", "--host", "a", "--account", "two", s(&src)]);
    on_b(&["forget", "--force", &gone]);
    let out = a.run(&["backup", "--host", "a", "--account", "one", s(&src)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("unreadable"),
        "the parent was unreadable: {}",
        stderr(&out)
    );
    let after = listing(&a, &["--account", "one", "--host", "a"]);
    let newest = after.last().unwrap();
    assert_eq!(newest.3.as_deref(), Some(fallback.as_str()), "parent");
    assert!(!ids(&after).contains(&gone));

    // A snapshot made through B's cache and forgotten through A's leaves
    // B's listing as well.
    let b_rows = listing(&a, &["--cache-dir", s(&b_cache)]);
    let b_three = b_rows.iter().find(|r| r.1 == "three").unwrap().0.clone();
    a.ok(&["forget", "--force", &b_three]);
    assert!(!ids(&listing(&a, &["--cache-dir", s(&b_cache)])).contains(&b_three));

    // `cache rebuild` starts the snapshot cache over and lists the same.
    a.ok(&["cache", "rebuild"]);
    assert_eq!(ids(&listing(&a, &[])), ids(&uncached(&[])));
}

/// Run `args` on every host at once; a host that finds the repository
/// locked (exit 11) tries again. Returns each host's output.
fn all_at_once(hosts: &[Host], args: &dyn Fn(&Host) -> Vec<String>) -> Vec<Output> {
    let mut results: Vec<Option<Output>> = hosts.iter().map(|_| None).collect();
    for attempt in 0..20 {
        let children: Vec<(usize, std::process::Child)> = hosts
            .iter()
            .enumerate()
            .filter(|(i, _)| results[*i].is_none())
            .map(|(i, h)| (i, h.env.cairn().args(args(h)).spawn().unwrap()))
            .collect();
        if children.is_empty() {
            break;
        }
        for (i, child) in children {
            let out = child.wait_with_output().unwrap();
            match out.status.code() {
                Some(0) => results[i] = Some(out),
                Some(11) if attempt < 19 => {
                    std::thread::sleep(std::time::Duration::from_millis(500));
                }
                _ => panic!("host {i}: {:?}\n{}", args(&hosts[i]), stderr(&out)),
            }
        }
    }
    results.into_iter().map(|r| r.expect("done")).collect()
}

struct Host {
    name: String,
    account: String,
    env: Env,
    proxy: FaultProxy,
    src: std::path::PathBuf,
}

fn sixteen_hosts(server: Server) {
    let bucket = server.bucket();
    let url = format!("s3://{bucket}/many-hosts");
    let hosts: Vec<Host> = (0..16)
        .map(|i| {
            let proxy = FaultProxy::start(server.endpoint(), FaultPlan::default());
            let env = Env::new()
                .with_vars(server.cairn_env(&proxy.endpoint))
                .with_repo_url(url.clone());
            let src = env.path("src");
            generate_tree(
                &src,
                TreeSpec {
                    small_files: 12,
                    large_files: 1,
                    large_size: 200_000,
                    seed: 100 + i,
                },
            );
            Host {
                name: format!("host{i:02}"),
                account: format!("acct{}", i % 4),
                env,
                proxy,
                src,
            }
        })
        .collect();
    hosts[0]
        .env
        .ok(&["init", "--kdf-memory-kib", "256", "--pack-size", "256KiB"]);
    let backup = |h: &Host| {
        vec![
            "backup".to_string(),
            "--host".into(),
            h.name.clone(),
            "--account".into(),
            h.account.clone(),
            s(&h.src).to_string(),
        ]
    };
    // What each host's source held at each round, to compare restores.
    let expected = |h: &Host, round: usize| h.env.path(&format!("expected-{round}"));
    let mut per_round: Vec<Vec<Counts>> = Vec::new();
    for round in 0..4 {
        for h in &hosts {
            std::fs::write(
                h.src.join("round"),
                format!("round {round} of {}\n", h.name),
            )
            .unwrap();
            copy_tree(&h.src, &expected(h, round));
        }
        let before: Vec<Counts> = hosts.iter().map(|h| h.proxy.counts.now()).collect();
        if round == 2 {
            // A seventeenth host forgets and prunes while the last round runs.
            let maintenance = Env::new()
                .with_vars(server.cairn_env(server.endpoint()))
                .with_repo_url(url.clone());
            std::fs::copy(hosts[0].env.path("password"), maintenance.path("password")).unwrap();
            let pruner = std::thread::spawn(move || {
                for _ in 0..40 {
                    let out = maintenance.run(&["forget", "--keep-last", "1", "--prune"]);
                    match out.status.code() {
                        Some(0) => return maintenance,
                        Some(11) => std::thread::sleep(std::time::Duration::from_millis(300)),
                        _ => panic!("forget --prune: {}", stderr(&out)),
                    }
                }
                panic!("forget --prune never got the lock");
            });
            all_at_once(&hosts, &backup);
            let maintenance = pruner.join().unwrap();
            // Retention is per account: each of the four keeps its newest
            // (and whatever was saved after the forget).
            let left = listing(&maintenance, &[]);
            let accounts: std::collections::BTreeSet<&str> =
                left.iter().map(|r| r.1.as_str()).collect();
            assert_eq!(accounts.len(), 4, "{left:?}");
        } else {
            all_at_once(&hosts, &backup);
        }
        per_round.push(
            hosts
                .iter()
                .zip(before)
                .map(|(h, b)| {
                    let n = h.proxy.counts.now();
                    Counts {
                        list: n.list - b.list,
                        get: n.get - b.get,
                        head: n.head - b.head,
                        put: n.put - b.put,
                        delete: n.delete - b.delete,
                        other: n.other - b.other,
                    }
                })
                .collect(),
        );
    }
    for (round, counts) in per_round.iter().enumerate() {
        let max = |f: &dyn Fn(&Counts) -> u32| counts.iter().map(f).max().unwrap();
        eprintln!(
            "{}: round {round}, requests per backup (max over 16 hosts): list {} get {} head {} put {} delete {} other {}, total {}",
            server.name(),
            max(&|c| c.list),
            max(&|c| c.get),
            max(&|c| c.head),
            max(&|c| c.put),
            max(&|c| c.delete),
            max(&|c| c.other),
            max(&|c| c.total()),
        );
    }
    // A nightly backup (with a parent) costs a bounded number of requests:
    // what grows is the other hosts' locks and new index objects, not the
    // snapshots in the repository. Round 1 is the first nightly one, round
    // 3 the one after the prune (which rebuilds each host's index cache);
    // round 2 ran beside the prune, lock retries included.
    for round in [1, 3] {
        for (i, c) in per_round[round].iter().enumerate() {
            assert!(c.total() <= 150, "host {i}, round {round}: {c:?}");
            assert!(c.list <= 20, "host {i}, round {round}: {c:?}");
            assert!(c.put <= 10, "host {i}, round {round}: {c:?}");
        }
    }

    // Every snapshot left restores to what its host held at that round.
    let all = listing(&hosts[0].env, &[]);
    for (id, _, host, _) in &all {
        let h = hosts.iter().find(|h| &h.name == host).unwrap();
        let target = h.env.path(&format!("restore-{id}"));
        h.env.ok(&[
            "restore",
            &format!("{id}:{}", s(&h.src)),
            "--target",
            s(&target),
        ]);
        let round = std::fs::read_to_string(target.join("round")).unwrap();
        let n: usize = round.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert_same_tree(&expected(h, n), &target);
    }
    // Every host has its last round's snapshot.
    for h in &hosts {
        let rows = listing(&h.env, &["--host", &h.name]);
        assert!(!rows.is_empty(), "{} has no snapshot", h.name);
    }
    let out = hosts[0].env.run(&["check", "--read-data", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert!(out.status.success(), "check: {report}\n{}", stderr(&out));
}

mod sixteen_hosts_one_s3_repository {
    #[test]
    fn moto() {
        super::sixteen_hosts(super::Server::Moto)
    }
    #[test]
    fn s3rver() {
        super::sixteen_hosts(super::Server::S3rver)
    }
}
