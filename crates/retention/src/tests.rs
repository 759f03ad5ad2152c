use super::*;
use proptest::prelude::*;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn snap(id: &str, time: &str) -> SnapshotInfo<String> {
    SnapshotInfo {
        id: id.to_string(),
        time: ts(time),
        account: "default".into(),
        tags: vec![],
        status: Status::Complete,
    }
}

fn policy(text: &str) -> Policy {
    Policy::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

fn run(snaps: &[SnapshotInfo<String>], text: &str) -> AccountPlan<String> {
    let mut plans = plan(
        snaps,
        &HashMap::new(),
        &policy(text),
        ts("2030-01-01T00:00:00Z"),
    );
    assert_eq!(plans.len(), 1);
    plans.remove(0)
}

fn kept(p: &AccountPlan<String>) -> Vec<String> {
    let mut v: Vec<String> = p
        .snapshots
        .iter()
        .filter(|d| d.keep())
        .map(|d| d.id.clone())
        .collect();
    v.sort();
    v
}

fn reasons_of(p: &AccountPlan<String>, id: &str) -> Vec<String> {
    p.snapshots
        .iter()
        .find(|d| d.id == id)
        .unwrap()
        .reasons
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn seed_003_quarterly_keeps_the_last_full_backup_of_each_quarter() {
    // Monthly full backups over two quarters.
    let snaps: Vec<_> = (1..=6)
        .map(|m| snap(&format!("m{m}"), &format!("2026-{m:02}-01T03:00:00Z")))
        .collect();
    let p = run(&snaps, "[default]\nkeep-quarterly = 2\n");
    assert_eq!(
        kept(&p),
        vec!["m3", "m6"],
        "last of Q1 and last of Q2, never the first of Q1"
    );
    assert_eq!(reasons_of(&p, "m3"), vec!["quarterly 2026-Q1"]);
    assert_eq!(reasons_of(&p, "m6"), vec!["newest", "quarterly 2026-Q2"]);
    let removed = p.snapshots.iter().find(|d| d.id == "m1").unwrap();
    assert_eq!(removed.removal, Some(Removal::NoRule));
}

#[test]
fn keep_last_and_all() {
    let snaps: Vec<_> = (1..=5)
        .map(|d| snap(&format!("d{d}"), &format!("2026-01-0{d}T00:00:00Z")))
        .collect();
    assert_eq!(
        kept(&run(&snaps, "[default]\nkeep-last = 2\n")),
        vec!["d4", "d5"]
    );
    assert_eq!(
        kept(&run(
            &snaps,
            "[default]\nkeep-last = 0\nkeep-tag = [\"x\"]\n"
        )),
        vec!["d5"]
    );
    assert_eq!(
        kept(&run(&snaps, "[default]\nkeep-daily = \"all\"\n")).len(),
        5
    );
    assert_eq!(
        reasons_of(&run(&snaps, "[default]\nkeep-last = \"all\"\n"), "d1"),
        vec!["last all"]
    );
}

#[test]
fn daily_at_the_year_change_depends_on_the_time_zone() {
    let snaps = vec![
        snap("a", "2025-12-30T12:00:00Z"),
        snap("b", "2025-12-31T23:00:00Z"),
        snap("c", "2026-01-01T01:00:00Z"),
    ];
    // UTC: b is Dec 31, c is Jan 1.
    let p = run(&snaps, "[default]\nkeep-daily = 2\n");
    assert_eq!(kept(&p), vec!["b", "c"]);
    assert_eq!(reasons_of(&p, "b"), vec!["daily 2025-12-31"]);
    // New York: b (18:00) and c (20:00) are both Dec 31; a is Dec 30.
    let p = run(
        &snaps,
        "timezone = \"America/New_York\"\n[default]\nkeep-daily = 2\n",
    );
    assert_eq!(kept(&p), vec!["a", "c"]);
    assert_eq!(reasons_of(&p, "c"), vec!["newest", "daily 2025-12-31"]);
    // Yearly across the change.
    let p = run(&snaps, "[default]\nkeep-yearly = 2\n");
    assert_eq!(reasons_of(&p, "b"), vec!["yearly 2025"]);
}

#[test]
fn iso_week_53() {
    // 2026 has 53 ISO weeks: Thursday 2026-12-31 is in week 53, and so is
    // Saturday 2027-01-02; Monday 2027-01-04 starts 2027-W01.
    let snaps = vec![
        snap("w52", "2026-12-23T10:00:00Z"),
        snap("w53a", "2026-12-29T10:00:00Z"),
        snap("w53b", "2027-01-02T10:00:00Z"),
        snap("w01", "2027-01-04T10:00:00Z"),
    ];
    let p = run(&snaps, "[default]\nkeep-weekly = 3\n");
    assert_eq!(kept(&p), vec!["w01", "w52", "w53b"]);
    assert_eq!(reasons_of(&p, "w53b"), vec!["weekly 2026-W53"]);
    assert_eq!(reasons_of(&p, "w01"), vec!["newest", "weekly 2027-W01"]);
}

#[test]
fn quarter_ends_follow_the_time_zone() {
    let snaps = vec![
        snap("q1-end", "2026-03-31T21:30:00Z"),
        snap("q1-late", "2026-03-31T22:30:00Z"),
        snap("q2", "2026-05-15T00:00:00Z"),
    ];
    // UTC: both March snapshots are Q1; the later one is kept.
    let p = run(&snaps, "[default]\nkeep-quarterly = 2\n");
    assert_eq!(kept(&p), vec!["q1-late", "q2"]);
    // Berlin (CEST, +02:00): 22:30Z is 00:30 on April 1, so Q2; 21:30Z is
    // 23:30 on March 31, the last of Q1.
    let p = run(
        &snaps,
        "timezone = \"Europe/Berlin\"\n[default]\nkeep-quarterly = 2\n",
    );
    assert_eq!(kept(&p), vec!["q1-end", "q2"]);
    assert_eq!(reasons_of(&p, "q1-end"), vec!["quarterly 2026-Q1"]);
    let p = run(
        &snaps,
        "timezone = \"Europe/Berlin\"\n[default]\nkeep-monthly = 3\n",
    );
    assert_eq!(reasons_of(&p, "q1-late"), vec!["monthly 2026-04"]);
}

#[test]
fn dst_changes_in_a_local_time_zone() {
    // Europe/Berlin springs forward on 2026-03-29 at 02:00 local (01:00Z)
    // and falls back on 2026-10-25 at 03:00 local (01:00Z).
    let tz = "timezone = \"Europe/Berlin\"\n";
    let spring = vec![
        snap("before", "2026-03-29T00:30:00Z"),   // 01:30 CET
        snap("after", "2026-03-29T01:30:00Z"),    // 03:30 CEST (02:xx does not exist)
        snap("next-day", "2026-03-29T22:30:00Z"), // 00:30 CEST on the 30th
    ];
    let p = run(&spring, &format!("{tz}[default]\nkeep-hourly = 10\n"));
    assert_eq!(reasons_of(&p, "before"), vec!["hourly 2026-03-29T01"]);
    assert_eq!(reasons_of(&p, "after"), vec!["hourly 2026-03-29T03"]);
    let p = run(&spring, &format!("{tz}[default]\nkeep-daily = 5\n"));
    assert_eq!(
        reasons_of(&p, "next-day"),
        vec!["newest", "daily 2026-03-30"]
    );
    assert_eq!(kept(&p), vec!["after", "next-day"], "one per local day");

    // Falling back, 02:30 local happens twice: one hour, two instants.
    let autumn = vec![
        snap("first-0230", "2026-10-25T00:30:00Z"),  // 02:30 CEST
        snap("second-0230", "2026-10-25T01:30:00Z"), // 02:30 CET
    ];
    let p = run(&autumn, &format!("{tz}[default]\nkeep-hourly = 10\n"));
    assert_eq!(
        kept(&p),
        vec!["second-0230"],
        "the repeated local hour is one period"
    );

    // keep-within counts calendar days in local time: 1d before 2026-03-30
    // 00:30 CEST is 2026-03-29 00:30 CET (23:30Z), only 23 hours earlier,
    // so local midnight of the 29th (23:00Z) is outside; 24h reaches it.
    let mut edge = spring.clone();
    edge.push(snap("midnight", "2026-03-28T23:00:00Z"));
    let p = run(&edge, &format!("{tz}[default]\nkeep-within = \"1d\"\n"));
    assert_eq!(kept(&p), vec!["after", "before", "next-day"]);
    let p = run(&edge, &format!("{tz}[default]\nkeep-within = \"24h\"\n"));
    assert_eq!(kept(&p), vec!["after", "before", "midnight", "next-day"]);
}

#[test]
fn keep_within_counts_from_the_newest_snapshot_not_the_clock() {
    // Backups stopped in 2026; the clock says 2030. Nothing ages out.
    let snaps = vec![
        snap("old", "2026-01-01T00:00:00Z"),
        snap("mid", "2026-02-20T00:00:00Z"),
        snap("new", "2026-03-01T00:00:00Z"),
    ];
    let p = run(&snaps, "[default]\nkeep-within = \"69d\"\n");
    assert_eq!(kept(&p), vec!["mid", "new", "old"]);
    assert_eq!(reasons_of(&p, "old"), vec!["within 69d"]);
    let p = run(&snaps, "[default]\nkeep-within = \"1w\"\n");
    assert_eq!(kept(&p), vec!["new"]);
    let p = run(&snaps, "[default]\nkeep-within = \"2w\"\n");
    assert_eq!(kept(&p), vec!["mid", "new"]);
}

#[test]
fn keep_within_periods_keep_one_per_period_inside_the_window() {
    let snaps = vec![
        snap("d1a", "2026-06-01T01:00:00Z"),
        snap("d1b", "2026-06-01T20:00:00Z"),
        snap("d2", "2026-06-02T12:00:00Z"),
        snap("old", "2026-05-01T12:00:00Z"),
    ];
    let p = run(&snaps, "[default]\nkeep-within-daily = \"7d\"\n");
    assert_eq!(kept(&p), vec!["d1b", "d2"]);
    assert_eq!(reasons_of(&p, "d1b"), vec!["within-daily 7d 2026-06-01"]);
    let p = run(&snaps, "[default]\nkeep-within-monthly = \"3mo\"\n");
    assert_eq!(kept(&p), vec!["d2", "old"]);
}

#[test]
fn tags_newest_and_failed_snapshots() {
    let mut snaps = vec![
        snap("legal", "2025-01-01T00:00:00Z"),
        snap("good", "2026-01-01T00:00:00Z"),
        snap("failed-newer", "2026-02-01T00:00:00Z"),
    ];
    snaps[0].tags = vec!["legal-hold".into()];
    snaps[2].status = Status::Failed;
    let p = run(&snaps, "[default]\nkeep-tag = [\"legal-hold\"]\n");
    assert_eq!(kept(&p), vec!["good", "legal"]);
    assert_eq!(reasons_of(&p, "legal"), vec!["tag legal-hold"]);
    assert_eq!(
        reasons_of(&p, "good"),
        vec!["newest"],
        "the newest good one, not the failed one"
    );
    let failed = p.snapshots.iter().find(|d| d.id == "failed-newer").unwrap();
    assert_eq!(failed.removal, Some(Removal::NotCounting(Status::Failed)));
}

#[test]
fn disabled_accounts_are_purged_after_purge_after_and_re_enabling_restores_retention() {
    let snaps = vec![
        snap("a", "2026-01-01T00:00:00Z"),
        snap("b", "2026-02-01T00:00:00Z"),
    ];
    let pol = policy("[default]\nkeep-last = 5\npurge-after = \"99d\"\n");
    let since = ts("2026-03-01T00:00:00Z");
    let disabled = HashMap::from([("default".to_string(), AccountState::Disabled { since })]);

    let before = plan(&snaps, &disabled, &pol, ts("2026-06-07T23:00:00Z"));
    let purge = before[0].purge.unwrap();
    assert_eq!(purge.date, ts("2026-06-08T00:00:00Z"));
    assert!(!purge.due);
    assert!(before[0].snapshots.iter().all(Decision::keep));

    let after = plan(&snaps, &disabled, &pol, ts("2026-06-08T00:00:00Z"));
    assert!(after[0].purge.unwrap().due);
    assert!(
        after[0]
            .snapshots
            .iter()
            .all(|d| d.removal == Some(Removal::Purge))
    );

    // Re-enabled (state active again): normal retention.
    let again = plan(&snaps, &HashMap::new(), &pol, ts("2027-01-01T00:00:00Z"));
    assert!(again[0].snapshots.iter().all(Decision::keep));
    assert_eq!(again[0].purge, None);

    // Without purge-after, a disabled account is never purged.
    let pol = policy("[default]\nkeep-last = 5\n");
    let never = plan(&snaps, &disabled, &pol, ts("2099-01-01T00:00:00Z"));
    assert_eq!(never[0].purge, None);
    assert!(never[0].snapshots.iter().all(Decision::keep));

    // A disabled account with no snapshots still shows its purge date.
    let pol = policy("[default]\nkeep-last = 5\npurge-after = \"10d\"\n");
    let states = HashMap::from([("gone".to_string(), AccountState::Disabled { since })]);
    let plans = plan::<String>(&[], &states, &pol, since);
    assert_eq!(plans[0].account, "gone");
    assert_eq!(plans[0].purge.unwrap().date, ts("2026-03-11T00:00:00Z"));
}

#[test]
fn account_sections_first_match_wins_and_inherit_from_default() {
    let pol = policy(
        r#"
timezone = "UTC"
[default]
keep-daily = 7
purge-after = "99d"

[[account]]
pattern = "mail-*"
keep-monthly = 12

[[account]]
pattern = "mail-archive"
keep-yearly = 10
"#,
    );
    let (section, rules) = pol.rules_for("mail-archive");
    assert_eq!(section, "account \"mail-*\"");
    assert_eq!(
        rules.keep_periods,
        vec![
            (PeriodKind::Daily, Count::N(7)),
            (PeriodKind::Monthly, Count::N(12))
        ]
    );
    assert_eq!(rules.purge_after.unwrap().to_string(), "99d");
    let (section, _) = pol.rules_for("calendar");
    assert_eq!(section, "default");
}

#[test]
fn bad_policy_files_are_clear_errors() {
    let cases: &[(&str, &str)] = &[
        ("", "empty"),
        ("   \n# only a comment\n", "empty"),
        ("[default]\nkeep-dayly = 3\n", "unknown field `keep-dayly`"),
        ("[default]\nkeep-dayly = 3\n", "line 2"),
        ("[default]\nkeep-last = -1\n", "-1 is not a count"),
        ("[default]\nkeep-last = \"many\"\n", "not a count"),
        (
            "[default]\nkeep-within = \"69 fortnights\"\n",
            "not a duration",
        ),
        ("[default]\nkeep-within = \"-3d\"\n", "positive"),
        ("[default]\nkeep-within = \"90m\"\n", "hours, days"),
        (
            "timezone = \"Mars/Olympus\"\n[default]\nkeep-last = 1\n",
            "IANA",
        ),
        (
            "[[account]]\npattern = \"x\"\nkeep-last = 1\n",
            "no [default]",
        ),
        ("[default]\npurge-after = \"99d\"\n", "no keep rule"),
        (
            "[default]\nkeep-last = 1\n[[account]]\nkeep-last = 2\n",
            "line 3, column 1: `pattern`: [[account]] section 1 has no pattern",
        ),
        (
            "[default]\nkeep-last = 1\n[[account]]\npattern = \"a[\"\n",
            "line 4, column 11: `pattern`: \"a[\" is not a glob",
        ),
        (
            "[default]\nkeep-last = 1\nunexpected = true\n",
            "unknown field",
        ),
        ("keep-last = 1\n", "unknown field `keep-last`"),
        ("[default\nkeep-last = 1\n", "line 1"),
    ];
    for (text, expected) in cases {
        let err = Policy::parse(text).unwrap_err().to_string();
        assert!(
            err.contains(expected),
            "{text:?}: {err:?} should mention {expected:?}"
        );
    }
}

#[test]
fn log_segments_follow_the_oldest_kept_snapshot() {
    let pol = policy("[default]\nkeep-last = 1\nlogs-within = \"2d\"\npurge-after = \"1d\"\n");
    let snaps = vec![
        snap("s1", "2026-01-01T00:00:00Z"),
        snap("s2", "2026-01-10T00:00:00Z"),
    ];
    let plans = plan(&snaps, &HashMap::new(), &pol, ts("2026-02-01T00:00:00Z"));
    let seg = |id: &str, t: &str| LogInfo {
        id: id.to_string(),
        account: "default".into(),
        stream: "pg".into(),
        time: ts(t),
    };
    let logs = vec![
        seg("l1", "2026-01-02T00:00:00Z"),
        seg("l2", "2026-01-05T00:00:00Z"),
        seg("l3", "2026-01-09T00:00:00Z"),
        seg("l4", "2026-01-10T06:00:00Z"),
        seg("l5", "2026-01-12T00:00:00Z"),
    ];
    let d = plan_logs(&logs, &plans, &pol);
    let kept: Vec<&str> = d
        .iter()
        .filter(|d| d.keep())
        .map(|d| d.id.as_str())
        .collect();
    // s2 is kept (newest); l4, l5 follow it; l3 is the chain start; l5 and
    // l4 are also within 2d of the newest segment.
    assert_eq!(kept, vec!["l5", "l4", "l3"]);
    let l3 = d.iter().find(|d| d.id == "l3").unwrap();
    assert_eq!(l3.reasons, vec![LogReason::ChainStart]);

    let disabled = HashMap::from([(
        "default".to_string(),
        AccountState::Disabled {
            since: ts("2026-01-15T00:00:00Z"),
        },
    )]);
    let plans = plan(&snaps, &disabled, &pol, ts("2026-02-01T00:00:00Z"));
    let d = plan_logs(&logs, &plans, &pol);
    assert!(d.iter().all(|d| !d.keep() && d.purged));

    let none = plan_logs(&logs, &Vec::<AccountPlan<String>>::new(), &pol);
    assert!(
        none.iter()
            .all(|d| d.reasons.contains(&LogReason::NoSnapshot))
    );
}

/// The rules stated as plainly as possible, for the property test.
fn reference_kept(
    snaps: &[SnapshotInfo<String>],
    last: Option<u32>,
    periods: &[(PeriodKind, u32)],
) -> Vec<String> {
    let tz = TimeZone::UTC;
    let mut keep: HashSet<String> = HashSet::new();
    let newest = snaps.iter().max_by_key(|s| s.time).unwrap();
    keep.insert(newest.id.clone());
    if let Some(n) = last {
        let mut sorted: Vec<_> = snaps.iter().collect();
        sorted.sort_by_key(|s| std::cmp::Reverse(s.time));
        for s in sorted.iter().take(n as usize) {
            keep.insert(s.id.clone());
        }
    }
    for &(kind, n) in periods {
        let mut keys: Vec<i64> = snaps.iter().map(|s| kind.period(s.time, &tz).0).collect();
        keys.sort_unstable_by(|a, b| b.cmp(a));
        keys.dedup();
        for key in keys.into_iter().take(n as usize) {
            let last_in_period = snaps
                .iter()
                .filter(|s| kind.period(s.time, &tz).0 == key)
                .max_by_key(|s| s.time)
                .unwrap();
            keep.insert(last_in_period.id.clone());
        }
    }
    let mut v: Vec<String> = keep.into_iter().collect();
    v.sort();
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn plan_agrees_with_the_reference(
        offsets in proptest::collection::btree_set(0i64..(3 * 365 * 24 * 60), 1..60),
        last in proptest::option::of(0u32..6),
        counts in proptest::collection::vec(proptest::option::of(0u32..5), 6),
    ) {
        let base = ts("2025-01-01T00:00:00Z");
        let snaps: Vec<_> = offsets
            .iter()
            .enumerate()
            .map(|(i, minutes)| SnapshotInfo {
                id: format!("s{i:03}"),
                time: base + jiff::SignedDuration::from_mins(*minutes),
                account: "default".into(),
                tags: vec![],
                status: Status::Complete,
            })
            .collect();
        let mut periods = Vec::new();
        for (kind, count) in PeriodKind::ALL.iter().zip(&counts) {
            if let Some(n) = count {
                periods.push((*kind, *n));
            }
        }
        // A policy whose every count is 0 keeps nothing and is refused
        // (its own test): give it keep-last = 1 instead.
        let nothing_kept = last.is_none_or(|n| n == 0) && periods.iter().all(|(_, n)| *n == 0);
        let last = if nothing_kept { Some(1) } else { last };
        let mut text = String::from("[default]\n");
        if let Some(n) = last {
            text.push_str(&format!("keep-last = {n}\n"));
        }
        for (kind, n) in &periods {
            text.push_str(&format!("keep-{} = {n}\n", kind.name()));
        }
        let p = run(&snaps, &text);
        prop_assert_eq!(kept(&p), reference_kept(&snaps, last, &periods));
    }
}

#[test]
fn zero_counts_keep_nothing_and_alone_are_no_rule() {
    for text in [
        "[default]\nkeep-last = 0\n",
        "[default]\nkeep-last = 0\nkeep-daily = 0\nkeep-quarterly = 0\n",
        "[default]\nkeep-tag = []\nkeep-monthly = 0\n",
    ] {
        let err = Policy::parse(text).unwrap_err().to_string();
        assert!(
            err.contains("line 1") && err.contains("no keep rule"),
            "{text:?}: {err}"
        );
    }
    let err = Policy::parse(
        "[default]\nkeep-daily = 3\n\n[[account]]\npattern = \"a*\"\nkeep-daily = 0\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("line 4") && err.contains("\"a*\""), "{err}");
    for zero in ["0d", "0h", "0mo", "0y"] {
        let text = format!("[default]\nkeep-within = \"{zero}\"\n");
        let err = Policy::parse(&text).unwrap_err().to_string();
        assert!(
            err.contains("line 2") && err.contains("positive"),
            "{zero}: {err}"
        );
    }
    // A zero beside a rule that keeps something is fine.
    policy("[default]\nkeep-last = 0\nkeep-daily = 7\n");
}

#[test]
fn snapshots_dated_in_the_future_are_kept_and_left_out_of_the_rules() {
    let pol = policy("[default]\nkeep-within = \"30d\"\n");
    let snaps = vec![
        snap("today-1", "2026-12-01T00:00:00Z"),
        snap("today-2", "2026-12-01T06:00:00Z"),
        snap("old", "2026-09-01T00:00:00Z"),
        snap("future", "2999-01-01T00:00:00Z"),
    ];
    let plans = plan(&snaps, &HashMap::new(), &pol, ts("2026-12-01T12:00:00Z"));
    let d = &plans[0].snapshots;
    let by = |id: &str| d.iter().find(|x| x.id == id).unwrap();
    // Within 30 days of the newest snapshot that is not in the future.
    assert!(by("today-1").keep() && by("today-2").keep());
    assert!(by("today-2").reasons.contains(&Reason::Newest));
    assert!(!by("old").keep());
    assert_eq!(by("future").reasons, vec![Reason::Future]);
}

#[test]
fn policy_errors_name_line_column_and_key() {
    let err = Policy::parse("timezone = \"Europe/Berln\"\n[default]\nkeep-last = 1\n")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("line 1, column 12: `timezone`"), "{err}");
    let err = Policy::parse("[default]\nkeep-last = 5000000000\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("line 2") && err.contains("too large a count"),
        "{err}"
    );
    let err = Policy::parse("[default]\nkeep-last = -1\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("line 2") && err.contains("is not a count"),
        "{err}"
    );
    let err = Policy::parse("[default]\npattern = \"x\"\nkeep-last = 1\n")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("line 2, column 11: `pattern`"), "{err}");
}
