//! Transaction-log streams: ordered, append-only series of log segments
//! (for example PostgreSQL WAL files) per account and stream, stored as
//! deduplicated, compressed, encrypted chunks like any file content.
//!
//! Each segment has a sealed JSON manifest at
//! `logs/<stream tag>/<sequence>-<id>` (FORMAT.md, "Log segments"): the
//! stream tag is a keyed hash of account and stream, the sequence number
//! (16 hex digits) orders the stream, and the id is the hash of the
//! manifest. A manifest names the previous segment's id, so the chain is
//! tamper-evident and gaps are detectable.
//!
//! A push stores the content first (packs, index), then the manifest: it
//! returns only when the segment is durable, because the database deletes
//! its copy afterwards. Pushing a segment again with the same content
//! succeeds and stores nothing; the same name with other content is refused.

use crate::error::{Error, Result};
use crate::id::{BlobId, ChunkId};
use crate::layout::ObjectKind;
use crate::repo::Repository;
use crate::snapshot::validate_account;
use crate::writer::BlobWriter;
pub use cairn_format::log_segment::*;
pub use cairn_format::names::{validate_segment_name, validate_stream};
use std::io::{Read, Write};

/// What a push did.
#[derive(Debug, Clone)]
pub enum PushOutcome {
    /// A new segment was stored.
    Stored(Segment),
    /// The same segment was already stored; nothing was written.
    AlreadyStored(Segment),
}

impl PushOutcome {
    /// The segment.
    pub fn segment(&self) -> &Segment {
        match self {
            PushOutcome::Stored(s) | PushOutcome::AlreadyStored(s) => s,
        }
    }
}

/// Load the manifests of these objects, through the local cache.
pub(crate) fn load_segments(repo: &Repository, objects: &[String]) -> Result<Vec<Segment>> {
    let cache = repo.index()?;
    let cached = cache.log_manifests(objects)?;
    let missing: Vec<String> = objects
        .iter()
        .filter(|o| !cached.contains_key(*o))
        .cloned()
        .collect();
    let mut fresh = Vec::new();
    for (object, _, manifest) in repo.manifests().fetch::<SegmentManifest>(&missing) {
        fresh.push((object, manifest?));
    }
    let mut out = Vec::with_capacity(objects.len());
    for o in objects {
        let json = match cached.get(o) {
            Some(j) => j.as_slice(),
            None => match fresh.iter().find(|(n, _)| n == o) {
                Some((_, j)) => j.as_slice(),
                None => continue,
            },
        };
        out.push(decode(repo.keys(), o, json)?);
    }
    cache.put_log_manifests(&fresh)?;
    Ok(out)
}

/// The segments of one stream, in sequence order.
pub fn log_segments(repo: &Repository, account: &str, stream: &str) -> Result<Vec<Segment>> {
    let tag = repo.keys().stream_tag(account, stream);
    let listing = repo.store().list_under(ObjectKind::Log, &tag)?;
    let names: Vec<String> = listing.objects.into_iter().map(|o| o.name).collect();
    let mut segs = crate::logs::load_segments(repo, &names)?;
    segs.retain(|s| s.manifest.account == account && s.manifest.stream == stream);
    segs.sort_by_key(|s| (s.manifest.seq, s.id));
    Ok(segs)
}

/// Every segment of every stream, ordered by account, stream and sequence.
pub fn all_log_segments(repo: &Repository) -> Result<Vec<Segment>> {
    let listing = repo.store().list(ObjectKind::Log)?;
    let names: Vec<String> = listing.objects.into_iter().map(|o| o.name).collect();
    let mut segs = crate::logs::load_segments(repo, &names)?;
    segs.sort_by(|a, b| {
        (
            &a.manifest.account,
            &a.manifest.stream,
            a.manifest.seq,
            a.id,
        )
            .cmp(&(
                &b.manifest.account,
                &b.manifest.stream,
                b.manifest.seq,
                b.id,
            ))
    });
    Ok(segs)
}

/// Store a segment read from `data`. Returns once it is durable.
pub fn push_segment(
    repo: &Repository,
    account: &str,
    stream: &str,
    name: &str,
    position: Option<String>,
    data: &mut dyn Read,
) -> Result<PushOutcome> {
    validate_account(account)?;
    validate_stream(stream)?;
    validate_segment_name(name)?;
    let _lock = repo.lock(false, "log push")?;
    crate::account::ensure_account_active(repo, account)?;
    repo.refresh_index()?;

    // The content first: chunks into packs, packs indexed. A chunk
    // already stored counts only if its pack still exists.
    let mut writer = BlobWriter::new(repo)?;
    writer.probe_packs();
    let mut chunks = Vec::new();
    let mut size = 0u64;
    let mut stream_chunker = repo.chunker().stream(data);
    while let Some(piece) = stream_chunker
        .next_chunk()
        .map_err(|e| Error::io(format!("segment {name}"), e))?
    {
        let id = repo.keys().chunk_id(piece);
        writer.store(ChunkId::KIND, *id.as_bytes(), piece)?;
        chunks.push(id);
        size += piece.len() as u64;
    }
    writer.finish()?;

    let (same, head) = match repo.put_only_accounts() {
        None => {
            let existing = crate::logs::log_segments(repo, account, stream)?;
            let same = existing.iter().find(|s| s.manifest.name == name).cloned();
            (same, existing.last().map(|h| (h.manifest.seq, h.id)))
        }
        Some(_) => put_only_head(repo, account, stream, name)?,
    };
    if let Some(same) = same {
        if same.manifest.chunks == chunks {
            return Ok(PushOutcome::AlreadyStored(same));
        }
        return Err(Error::invalid(
            "log push",
            format!(
                "segment {name} of stream {stream} is already stored (sequence {}, pushed {}) with different content; refusing to replace it",
                same.manifest.seq, same.manifest.pushed
            ),
        ));
    }
    let manifest = SegmentManifest {
        version: LOG_VERSION,
        account: account.to_string(),
        stream: stream.to_string(),
        seq: head.map_or(0, |(seq, _)| seq + 1),
        name: name.to_string(),
        size,
        chunks,
        pushed: jiff::Timestamp::now(),
        position,
        prev: head.map(|(_, id)| id),
    };
    let tag = repo.keys().stream_tag(account, stream);
    let (id, object) = repo.save_manifest(&manifest)?;
    if repo.put_only_accounts().is_some() {
        // The only record a put-only host keeps of what it pushed: a
        // retry of this segment is recognised from it.
        let json = serde_json::to_vec(&manifest)
            .map_err(|e| Error::invalid("log segment", e.to_string()))?;
        repo.index()?.put_log_manifests(&[(object.clone(), json)])?;
    }
    crate::util::failpoint("log-after-manifest");

    // Two pushes to one stream at once would fork the chain: detect it
    // and withdraw ours (the database retries the archive command).
    let rival = repo
        .store()
        .list_under(ObjectKind::Log, &tag)?
        .objects
        .into_iter()
        .filter_map(|o| parse_object(&o.name))
        .any(|(seq, other)| seq == manifest.seq && other != id);
    if rival {
        repo.delete_manifest::<SegmentManifest>(&object)?;
        return Err(Error::Locked(format!(
            "another push to stream {stream} of account {account} ran at the same time; retry"
        )));
    }
    Ok(PushOutcome::Stored(Segment {
        id,
        object,
        manifest,
    }))
}

/// A stream's head: the last sequence number and its segment's id.
type Head = Option<(u64, crate::id::LogId)>;

/// For a put-only key, which cannot read the stream's manifests: the
/// segment of this name it pushed itself (from its cache), and the
/// stream's head from the object names, which hold sequence and id.
fn put_only_head(
    repo: &Repository,
    account: &str,
    stream: &str,
    name: &str,
) -> Result<(Option<Segment>, Head)> {
    let tag = repo.keys().stream_tag(account, stream);
    let listing = repo.store().list_under(ObjectKind::Log, &tag)?;
    let names: Vec<String> = listing.objects.into_iter().map(|o| o.name).collect();
    let head = names.iter().filter_map(|n| parse_object(n)).max();
    let mut same = None;
    for (object, json) in repo.index()?.log_manifests(&names)? {
        let seg = decode(repo.keys(), &object, &json)?;
        if seg.manifest.name == name && seg.manifest.stream == stream {
            same = Some(seg);
        }
    }
    Ok((same, head))
}

/// Write a segment's content to `out`, verifying every chunk.
pub fn read_segment(repo: &Repository, seg: &Segment, out: &mut dyn Write) -> Result<u64> {
    let view = repo.index()?.view()?;
    let mut total = 0u64;
    for chunk in &seg.manifest.chunks {
        let places = view.find_all(chunk)?;
        if places.is_empty() {
            return Err(Error::NotFound {
                what: format!(
                    "chunk {} of log segment {} (stream {})",
                    chunk.short(),
                    seg.manifest.name,
                    seg.manifest.stream
                ),
            });
        }
        let plain = crate::repo::read_first_good(
            repo,
            ChunkId::KIND,
            chunk.raw(),
            places
                .iter()
                .map(|l| (l.pack, l.offset, l.length, l.raw_length)),
        )?;
        out.write_all(&plain)
            .map_err(|e| Error::io(format!("segment {}", seg.manifest.name), e))?;
        total += plain.len() as u64;
    }
    if total != seg.manifest.size {
        return Err(Error::corrupt(
            format!("log segment {}", seg.manifest.name),
            format!("{total} bytes read, manifest says {}", seg.manifest.size),
        ));
    }
    Ok(total)
}

/// Delete a segment's manifest (retention). Its chunks stay until prune.
pub fn remove_segment(repo: &Repository, seg: &Segment) -> Result<()> {
    repo.delete_manifest::<SegmentManifest>(&seg.object)
}

mod range;
mod verify;
pub use range::{
    PointOptions, RangeGap, RestorePoint, SkippedSnapshot, gap_error, log_range, point_in_time,
    previous_snapshot_time, segments_since_previous_snapshot, unreadable_segment,
};
pub use verify::{LogVerifyOptions, LogVerifyReport, select_segments, verify_logs};

#[cfg(test)]
mod tests;
