//! Applying a retention decision: the deletion order of `forget`.
//!
//! The retention crate decides what goes (it knows no repository); this
//! module deletes it, in the order FORMAT.md ("Concurrency and deletion")
//! relies on, so that a forget stopped at any point leaves a repository
//! every reader understands:
//!
//! 1. each removed snapshot's manifest, then its verification records (a
//!    record without its snapshot is ignored, a snapshot without its
//!    record would count as unverified);
//! 2. the removed log segments, once the snapshots that needed them are
//!    gone;
//! 3. a `purged` account event for each account whose purge date is due.
//!
//! Only manifests are deleted; the data they used stays until prune.

use crate::account::AccountState;
use crate::error::Result;
use crate::id::{SnapshotId, VerificationId};
use crate::layout::ObjectKind;
use crate::lock::LockGuard;
use crate::logs::Segment;
use crate::repo::Repository;
use crate::verification::VerificationRecord;
use jiff::Timestamp;

/// What a forget deletes, decided before anything is touched.
#[derive(Debug, Clone, Default)]
pub struct ForgetPlan {
    /// The time the decision was made for; purge events are recorded at it.
    pub now: Timestamp,
    /// Snapshots to remove, each with the verification records that go
    /// with it.
    pub snapshots: Vec<(SnapshotId, Vec<(VerificationId, VerificationRecord)>)>,
    /// Log segments to remove.
    pub segments: Vec<Segment>,
    /// Accounts to record as purged.
    pub purge: Vec<String>,
}

/// What applying a plan did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForgetOutcome {
    /// Snapshot manifests removed.
    pub snapshots_removed: usize,
    /// Verification records removed with them.
    pub verifications_removed: usize,
    /// Log segment manifests removed.
    pub segments_removed: usize,
    /// Accounts recorded as purged.
    pub purged: Vec<String>,
    /// Snapshots and log segments kept because object lock still retains
    /// their manifests (a later forget removes them), and the earliest date
    /// one of them may go.
    pub retained: usize,
    /// The earliest retain-until date among them.
    pub retained_until: Option<jiff::Timestamp>,
    /// Every manifest the plan removes or object lock kept from it
    /// (`dir/name`): what the prune after it must not extend
    /// ([`crate::prune::ExtendManifests::AllBut`]).
    pub doomed: std::collections::HashSet<String>,
}

impl ForgetOutcome {
    /// Count a manifest object lock kept until `until`.
    fn hold(&mut self, until: jiff::Timestamp) {
        self.retained += 1;
        self.retained_until = Some(self.retained_until.map_or(until, |t| t.min(until)));
    }
}

/// A deletion's result: `Ok(None)` when it happened, `Ok(Some(until))`
/// when object lock kept the object until then; other errors pass.
fn unless_retained(result: Result<()>) -> Result<Option<jiff::Timestamp>> {
    match result {
        Ok(()) => Ok(None),
        Err(e) => match e.retained_until() {
            Some(until) => Ok(Some(until)),
            None => Err(e),
        },
    }
}

/// Delete what `plan` names, in the protocol's order, under an exclusive
/// lock that is confirmed before the first deletion.
pub fn apply_forget(
    repo: &Repository,
    plan: &ForgetPlan,
    lock: &LockGuard,
) -> Result<ForgetOutcome> {
    lock.confirm()?;
    let mut out = ForgetOutcome::default();
    for (id, records) in &plan.snapshots {
        out.doomed
            .insert(crate::pending::entry(ObjectKind::Snapshot, &id.to_hex()));
        for (record, _) in records {
            out.doomed.insert(crate::pending::entry(
                ObjectKind::Verification,
                &record.to_hex(),
            ));
        }
        if let Some(until) = unless_retained(repo.remove_snapshot(id))? {
            out.hold(until);
            continue;
        }
        out.snapshots_removed += 1;
        // A record object lock keeps is ignored once its snapshot is gone.
        for (record, _) in records {
            let removed = repo.delete_manifest::<VerificationRecord>(&record.to_hex());
            if unless_retained(removed)?.is_none() {
                out.verifications_removed += 1;
            }
        }
    }
    for seg in &plan.segments {
        out.doomed
            .insert(crate::pending::entry(ObjectKind::Log, &seg.object));
        match unless_retained(crate::logs::remove_segment(repo, seg))? {
            Some(until) => out.hold(until),
            None => out.segments_removed += 1,
        }
    }
    for account in &plan.purge {
        crate::account::record_account_event(repo, account, AccountState::Purged, plan.now)?;
        out.purged.push(account.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::{BackupOptions, backup};
    use crate::progress::NoProgress;
    use crate::verification::Verdict;

    #[test]
    fn a_plan_removes_snapshots_their_records_and_segments_and_records_purges() {
        let repo = crate::test_repo::memory_repo(&crate::test_repo::small_opts(16 << 10, 64 << 10));
        let work = tempfile::tempdir().unwrap();
        std::fs::write(work.path().join("f"), b"data").unwrap();
        let mut o = BackupOptions::new(vec![work.path().to_path_buf()]);
        o.account = "mail".into();
        let a = backup(&repo, &o, &NoProgress).unwrap().id;
        let b = backup(&repo, &o, &NoProgress).unwrap().id;
        let setup = repo.lock(false, "test").unwrap();
        crate::verification::record_verification(&repo, &a, Verdict::Verified, None, "ok").unwrap();
        crate::verification::record_verification(&repo, &b, Verdict::Verified, None, "ok").unwrap();
        for name in ["000001", "000002"] {
            crate::logs::push_segment(&repo, "mail", "wal", name, None, &mut &b"segment"[..])
                .unwrap();
        }
        crate::account::record_account_event(
            &repo,
            "mail",
            AccountState::Disabled,
            Timestamp::now(),
        )
        .unwrap();
        drop(setup);

        let mut records = crate::verification::verifications(&repo).unwrap();
        let segments = crate::logs::log_segments(&repo, "mail", "wal").unwrap();
        let plan = ForgetPlan {
            now: Timestamp::now(),
            snapshots: vec![(a, records.remove(&a).unwrap())],
            segments: segments[..1].to_vec(),
            purge: vec!["mail".into()],
        };
        let lock = repo.lock(true, "forget").unwrap();
        let out = apply_forget(&repo, &plan, &lock).unwrap();
        assert_eq!(
            (
                out.snapshots_removed,
                out.verifications_removed,
                out.segments_removed,
                out.purged,
                out.retained,
            ),
            (1, 1, 1, vec!["mail".to_string()], 0)
        );
        // What the prune after it must not extend: the snapshot, its record
        // and the segment.
        assert_eq!(out.doomed.len(), 3, "{:?}", out.doomed);
        let (left, bad) = repo.snapshots().unwrap();
        assert!(bad.is_empty());
        assert_eq!(left.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [b]);
        let records = crate::verification::verifications(&repo).unwrap();
        assert!(!records.contains_key(&a) && records.contains_key(&b));
        let names: Vec<String> = crate::logs::log_segments(&repo, "mail", "wal")
            .unwrap()
            .into_iter()
            .map(|s| s.manifest.name)
            .collect();
        assert_eq!(names, ["000002"]);
        let account = crate::account::account(&repo, "mail").unwrap().unwrap();
        assert_eq!(account.state, AccountState::Purged);
    }
}
