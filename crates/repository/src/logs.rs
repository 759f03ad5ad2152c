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

use crate::crypto::{self, Sealed};
use crate::error::{Error, Result};
use crate::id::{BlobId, ChunkId, LogId};
use crate::repo::Repository;
use crate::snapshot::validate_account;
use crate::store::ObjectKind;
use crate::writer::BlobWriter;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};

/// Current manifest version.
pub const LOG_VERSION: u32 = 1;

/// A segment's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentManifest {
    /// Manifest version.
    pub version: u32,
    /// The account.
    pub account: String,
    /// The stream (one database's log).
    pub stream: String,
    /// Position in the stream: 0, 1, 2...
    pub seq: u64,
    /// The segment's file name (`000000010000000000000003`).
    pub name: String,
    /// Content length.
    pub size: u64,
    /// Content chunks, in order.
    pub chunks: Vec<ChunkId>,
    /// When it was pushed.
    pub pushed: jiff::Timestamp,
    /// Where it sits in the source's own numbering (a PostgreSQL LSN), if given.
    #[serde(default)]
    pub position: Option<String>,
    /// The previous segment of the stream.
    pub prev: Option<LogId>,
}

/// A stored segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The manifest's id.
    pub id: LogId,
    /// Its object name (`<tag>/<seq>-<id>`).
    pub object: String,
    /// The manifest.
    pub manifest: SegmentManifest,
}

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

/// Check a stream name: the same alphabet as accounts.
pub fn validate_stream(stream: &str) -> Result<()> {
    validate_account(stream).map_err(|_| {
        Error::invalid(
            "stream name",
            format!("{stream:?} must be 1-128 characters of A-Z a-z 0-9 . _ - @ +, not starting with . or -"),
        )
    })
}

/// Check a segment name: one path component of printable characters.
pub fn validate_segment_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| !c.is_control() && c != '/' && c != '\\');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "segment name",
            format!("{name:?} must be one file name (no '/', at most 255 bytes)"),
        ))
    }
}

fn object_name(tag: &str, seq: u64, id: &LogId) -> String {
    format!("{tag}/{seq:016x}-{}", id.to_hex())
}

fn parse_object(name: &str) -> Option<(u64, LogId)> {
    let (_, file) = name.split_once('/')?;
    let (seq, id) = file.split_once('-')?;
    Some((
        u64::from_str_radix(seq, 16).ok()?,
        LogId::from_hex(id).ok()?,
    ))
}

impl Repository {
    fn open_manifest(&self, id: &LogId, bytes: &[u8]) -> Result<Vec<u8>> {
        let what = format!("log segment {}", id.short());
        if &LogId::of_bytes(bytes) != id {
            return Err(Error::corrupt(&what, "contents do not hash to its name"));
        }
        crypto::open_object(self.keys(), Sealed::LogSegment, bytes, &what)
    }

    fn decode_manifest(&self, object: &str, json: &[u8]) -> Result<Segment> {
        let (seq, id) = parse_object(object)
            .ok_or_else(|| Error::corrupt(format!("log object {object}"), "bad name"))?;
        let what = format!("log segment {}", id.short());
        let manifest: SegmentManifest =
            serde_json::from_slice(json).map_err(|e| Error::corrupt(&what, e.to_string()))?;
        if manifest.version != LOG_VERSION {
            return Err(Error::UnsupportedVersion {
                what,
                found: manifest.version,
                supported: LOG_VERSION,
            });
        }
        if manifest.seq != seq {
            return Err(Error::corrupt(
                &what,
                "sequence number differs from its name",
            ));
        }
        let tag = self.keys().stream_tag(&manifest.account, &manifest.stream);
        if !object.starts_with(&format!("{tag}/")) {
            return Err(Error::corrupt(&what, "stored under another stream"));
        }
        Ok(Segment {
            id,
            object: object.to_string(),
            manifest,
        })
    }

    /// Load the manifests of these objects, through the local cache.
    fn load_segments(&self, objects: &[String]) -> Result<Vec<Segment>> {
        let cache = self.index()?;
        let cached = cache.log_manifests(objects)?;
        let missing: Vec<String> = objects
            .iter()
            .filter(|o| !cached.contains_key(*o))
            .cloned()
            .collect();
        let fetched =
            self.store()
                .get_many_checked(ObjectKind::Log, &missing, 16, |object, bytes| {
                    let (_, id) = parse_object(object).ok_or_else(|| {
                        Error::corrupt(format!("log object {object}"), "bad name")
                    })?;
                    self.open_manifest(&id, &bytes)
                });
        let mut fresh = Vec::new();
        for (object, manifest) in missing.iter().zip(fetched) {
            match manifest {
                Ok(json) => fresh.push((object.clone(), json)),
                // Removed between list and get (a concurrent forget).
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            }
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
            out.push(self.decode_manifest(o, json)?);
        }
        cache.put_log_manifests(&fresh)?;
        Ok(out)
    }

    /// The segments of one stream, in sequence order.
    pub fn log_segments(&self, account: &str, stream: &str) -> Result<Vec<Segment>> {
        let tag = self.keys().stream_tag(account, stream);
        let listing = self.store().list_under(ObjectKind::Log, &tag)?;
        let names: Vec<String> = listing.objects.into_iter().map(|o| o.name).collect();
        let mut segs = self.load_segments(&names)?;
        segs.retain(|s| s.manifest.account == account && s.manifest.stream == stream);
        segs.sort_by_key(|s| (s.manifest.seq, s.id));
        Ok(segs)
    }

    /// Every segment of every stream, ordered by account, stream and sequence.
    pub fn all_log_segments(&self) -> Result<Vec<Segment>> {
        let listing = self.store().list(ObjectKind::Log)?;
        let names: Vec<String> = listing.objects.into_iter().map(|o| o.name).collect();
        let mut segs = self.load_segments(&names)?;
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
        &self,
        account: &str,
        stream: &str,
        name: &str,
        position: Option<String>,
        data: &mut dyn Read,
    ) -> Result<PushOutcome> {
        validate_account(account)?;
        validate_stream(stream)?;
        validate_segment_name(name)?;
        let _lock = self.lock(false, "log push")?;
        self.ensure_account_active(account)?;
        self.refresh_index()?;

        // The content first: chunks into packs, packs indexed. A chunk
        // already stored counts only if its pack still exists.
        let mut writer = BlobWriter::new(self)?;
        writer.probe_packs();
        let mut chunks = Vec::new();
        let mut size = 0u64;
        let mut stream_chunker = self.chunker().stream(data);
        while let Some(piece) = stream_chunker
            .next_chunk()
            .map_err(|e| Error::io(format!("segment {name}"), e))?
        {
            let id = self.keys().chunk_id(piece);
            writer.store(ChunkId::KIND, *id.as_bytes(), piece)?;
            chunks.push(id);
            size += piece.len() as u64;
        }
        writer.finish()?;

        let existing = self.log_segments(account, stream)?;
        if let Some(same) = existing.iter().find(|s| s.manifest.name == name) {
            if same.manifest.chunks == chunks {
                return Ok(PushOutcome::AlreadyStored(same.clone()));
            }
            return Err(Error::invalid(
                "log push",
                format!(
                    "segment {name} of stream {stream} is already stored (sequence {}, pushed {}) with different content; refusing to replace it",
                    same.manifest.seq, same.manifest.pushed
                ),
            ));
        }
        let head = existing.last();
        let manifest = SegmentManifest {
            version: LOG_VERSION,
            account: account.to_string(),
            stream: stream.to_string(),
            seq: head.map_or(0, |h| h.manifest.seq + 1),
            name: name.to_string(),
            size,
            chunks,
            pushed: jiff::Timestamp::now(),
            position,
            prev: head.map(|h| h.id),
        };
        let json = serde_json::to_vec(&manifest)
            .map_err(|e| Error::invalid("log manifest", e.to_string()))?;
        let bytes = crypto::seal_object(self.keys(), Sealed::LogSegment, &json)?;
        let id = LogId::of_bytes(&bytes);
        let tag = self.keys().stream_tag(account, stream);
        let object = object_name(&tag, manifest.seq, &id);
        self.confirm_lock()?;
        self.store().put(ObjectKind::Log, &object, bytes.into())?;
        self.confirm_or_undo(ObjectKind::Log, &object)?;
        crate::util::failpoint("log-after-manifest");

        // Two pushes to one stream at once would fork the chain: detect it
        // and withdraw ours (the database retries the archive command).
        let rival = self
            .store()
            .list_under(ObjectKind::Log, &tag)?
            .objects
            .into_iter()
            .filter_map(|o| parse_object(&o.name))
            .any(|(seq, other)| seq == manifest.seq && other != id);
        if rival {
            self.confirm_lock()?;
            self.store().delete(ObjectKind::Log, &object)?;
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

    /// Write a segment's content to `out`, verifying every chunk.
    pub fn read_segment(&self, seg: &Segment, out: &mut dyn Write) -> Result<u64> {
        let view = self.index()?.view()?;
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
                self,
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
    pub fn remove_segment(&self, seg: &Segment) -> Result<()> {
        self.confirm_lock()?;
        self.store().delete(ObjectKind::Log, &seg.object)
    }
}

/// A break in a stream's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    /// The last segment before the break.
    pub after: Option<String>,
    /// The first segment after it.
    pub before: String,
    /// What is wrong.
    pub problem: String,
}

/// Check that `segs` (one stream, sequence order) link up: consecutive
/// sequence numbers, each naming its predecessor.
pub fn chain_breaks(segs: &[Segment]) -> Vec<ChainBreak> {
    let mut out = Vec::new();
    for pair in segs.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let problem = if b.manifest.seq == a.manifest.seq {
            Some(format!("two segments with sequence {}", b.manifest.seq))
        } else if b.manifest.seq != a.manifest.seq + 1 {
            Some(format!(
                "segments {} to {} are missing",
                a.manifest.seq + 1,
                b.manifest.seq - 1
            ))
        } else if b.manifest.prev != Some(a.id) {
            Some("it does not name its predecessor (the chain was altered)".to_string())
        } else {
            None
        };
        if let Some(problem) = problem {
            out.push(ChainBreak {
                after: Some(a.manifest.name.clone()),
                before: b.manifest.name.clone(),
                problem,
            });
        }
    }
    out
}

mod range;
pub use range::{
    PointOptions, RangeGap, RestorePoint, SkippedSnapshot, gap_error, log_range, unreadable_segment,
};

#[cfg(test)]
mod tests;
