use super::*;
use crate::account::AccountState;

fn repo() -> Repository {
    crate::test_repo::memory_repo(&crate::test_repo::small_opts(64 << 10, 16 << 20))
}

fn segment(seed: u8, len: usize) -> Vec<u8> {
    let mut state = u64::from(seed) + 1;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}

fn push(repo: &Repository, name: &str, data: &[u8]) -> Result<PushOutcome> {
    crate::logs::push_segment(
        repo,
        "db",
        "main",
        name,
        Some(format!("0/{}", data.len())),
        &mut &data[..],
    )
}

fn count(repo: &Repository, kind: ObjectKind) -> usize {
    repo.store().list(kind).unwrap().objects.len()
}

#[test]
fn pushes_chain_and_read_back() {
    let repo = repo();
    let segs: Vec<Vec<u8>> = (0..3).map(|i| segment(i, 300_000)).collect();
    for (i, s) in segs.iter().enumerate() {
        let out = push(&repo, &format!("00000001000000000000000{i}"), s).unwrap();
        assert!(matches!(out, PushOutcome::Stored(_)));
        assert_eq!(out.segment().manifest.seq, i as u64);
    }
    let listed = crate::logs::log_segments(&repo, "db", "main").unwrap();
    assert_eq!(listed.len(), 3);
    assert!(chain_breaks(&listed).is_empty());
    assert_eq!(listed[1].manifest.prev, Some(listed[0].id));
    assert_eq!(listed[2].manifest.position.as_deref(), Some("0/300000"));
    for (seg, data) in listed.iter().zip(&segs) {
        let mut out = Vec::new();
        assert_eq!(
            crate::logs::read_segment(&repo, seg, &mut out).unwrap(),
            data.len() as u64
        );
        assert_eq!(&out, data);
    }
    // Other streams and accounts are separate.
    assert!(
        crate::logs::log_segments(&repo, "db", "other")
            .unwrap()
            .is_empty()
    );
    assert_eq!(crate::logs::all_log_segments(&repo).unwrap().len(), 3);
}

#[test]
fn repeated_pushes_are_idempotent_and_conflicts_refused() {
    let repo = repo();
    let data = segment(7, 200_000);
    push(&repo, "seg-1", &data).unwrap();
    let before = (
        count(&repo, ObjectKind::Pack),
        count(&repo, ObjectKind::Log),
    );
    let again = push(&repo, "seg-1", &data).unwrap();
    assert!(matches!(again, PushOutcome::AlreadyStored(_)));
    assert_eq!(
        (
            count(&repo, ObjectKind::Pack),
            count(&repo, ObjectKind::Log)
        ),
        before,
        "nothing new stored"
    );

    let err = push(&repo, "seg-1", &segment(8, 200_000)).unwrap_err();
    assert!(err.to_string().contains("different content"), "{err}");
    assert_eq!(
        crate::logs::log_segments(&repo, "db", "main")
            .unwrap()
            .len(),
        1
    );

    for bad in ["", "a/b", "..", "x\n"] {
        assert!(push(&repo, bad, b"x").is_err(), "{bad:?}");
    }
    assert!(
        crate::logs::push_segment(&repo, "db", "bad stream", "s", None, &mut &b"x"[..]).is_err()
    );
}

#[test]
fn a_disabled_account_takes_no_segments() {
    let repo = repo();
    let lock = repo.lock(false, "account").unwrap();
    crate::account::record_account_event(
        &repo,
        "db",
        AccountState::Disabled,
        jiff::Timestamp::now(),
    )
    .unwrap();
    drop(lock);
    let err = push(&repo, "s1", b"data").unwrap_err();
    assert!(matches!(err, Error::AccountDisabled { .. }), "{err}");
}

#[test]
fn recycled_segments_deduplicate() {
    let repo = repo();
    let a = segment(1, 1 << 20);
    push(&repo, "a", &a).unwrap();
    let packs_before: u64 = repo
        .store()
        .list(ObjectKind::Pack)
        .unwrap()
        .objects
        .iter()
        .map(|o| o.size)
        .sum();
    let mut b = a.clone();
    b[500_000..500_100].copy_from_slice(&[0u8; 100]);
    push(&repo, "b", &b).unwrap();
    let packs_after: u64 = repo
        .store()
        .list(ObjectKind::Pack)
        .unwrap()
        .objects
        .iter()
        .map(|o| o.size)
        .sum();
    assert!(
        packs_after - packs_before < 400_000,
        "only chunks around the change are new"
    );
}

#[test]
fn gaps_and_altered_chains_are_found() {
    let repo = repo();
    for i in 0..4u8 {
        push(&repo, &format!("s{i}"), &segment(i, 1000)).unwrap();
    }
    let segs = crate::logs::log_segments(&repo, "db", "main").unwrap();
    let lock = repo.lock(true, "forget").unwrap();
    crate::logs::remove_segment(&repo, &segs[2]).unwrap();
    drop(lock);
    let left = crate::logs::log_segments(&repo, "db", "main").unwrap();
    let breaks = chain_breaks(&left);
    assert_eq!(breaks.len(), 1);
    assert_eq!(breaks[0].after.as_deref(), Some("s1"));
    assert_eq!(breaks[0].before, "s3");
    assert!(breaks[0].problem.contains("missing"));

    let mut altered = segs.clone();
    altered[3].manifest.prev = Some(altered[0].id);
    let breaks = chain_breaks(&altered);
    assert!(breaks[0].problem.contains("predecessor"), "{breaks:?}");
}

#[test]
fn prune_keeps_log_data_until_the_segment_is_removed() {
    use crate::check::{CheckOptions, check};
    use crate::progress::NoProgress;
    use crate::prune::{PruneOptions, prune};
    let repo = repo();
    let data = segment(3, 500_000);
    push(&repo, "s0", &data).unwrap();
    let opts = PruneOptions {
        max_unused_percent: 0.0,
        delete_after: std::time::Duration::ZERO,
        ..PruneOptions::default()
    };
    // No snapshot references the segment's chunks; prune must keep them.
    let r = prune(&repo, &opts, &NoProgress).unwrap();
    assert_eq!(r.packs_deleted, 0, "{r:?}");
    assert_eq!(r.log_segments, 1);
    let seg = crate::logs::log_segments(&repo, "db", "main")
        .unwrap()
        .remove(0);
    let mut out = Vec::new();
    crate::logs::read_segment(&repo, &seg, &mut out).unwrap();
    assert_eq!(out, data);
    let report = check(
        &repo,
        &CheckOptions {
            read_data: true,
            subset: None,
        },
        &NoProgress,
    )
    .unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.log_segments, 1);

    let lock = repo.lock(true, "forget").unwrap();
    crate::logs::remove_segment(&repo, &seg).unwrap();
    drop(lock);
    let r = prune(&repo, &opts, &NoProgress).unwrap();
    assert!(r.bytes_reclaimed() >= 400_000, "{r:?}");
}
