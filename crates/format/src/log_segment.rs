//! Log segment manifests (`logs/<tag>/<seq>-<id>`, docs/FORMAT.md "Log
//! segments"): each names the chunks of one transaction-log file and the
//! segment before it, so a stream's chain is tamper-evident.

use crate::crypto::{Keys, Sealed};
use crate::error::{Error, Result};
use crate::id::{ChunkId, LogId};
use crate::layout::ObjectKind;
use crate::manifest::{self, Manifest};
use crate::names::{validate_account, validate_stream};
use serde::{Deserialize, Serialize};

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

impl Manifest for SegmentManifest {
    const KIND: ObjectKind = ObjectKind::Log;
    const SEALED: Sealed = Sealed::LogSegment;
    const VERSION: u32 = LOG_VERSION;
    const NOUN: &'static str = "log segment";
    type Id = LogId;

    fn version(&self) -> u32 {
        self.version
    }

    fn order_time(&self) -> jiff::Timestamp {
        self.pushed
    }

    fn object_name(&self, id: &LogId, keys: &Keys) -> String {
        object_name(&keys.stream_tag(&self.account, &self.stream), self.seq, id)
    }

    fn id_from_name(name: &str) -> Option<LogId> {
        parse_object(name).map(|(_, id)| id)
    }

    fn validate(&self, what: &str) -> Result<()> {
        validate_account(&self.account)
            .and_then(|()| validate_stream(&self.stream))
            .map_err(|e| Error::corrupt(what, e.to_string()))
    }
}

/// The object name of a segment: `<tag>/<seq>-<id>`.
pub fn object_name(tag: &str, seq: u64, id: &LogId) -> String {
    format!("{tag}/{seq:016x}-{}", id.to_hex())
}

/// The sequence number and id in a segment's object name.
pub fn parse_object(name: &str) -> Option<(u64, LogId)> {
    let (_, file) = name.split_once('/')?;
    let (seq, id) = file.split_once('-')?;
    Some((
        u64::from_str_radix(seq, 16).ok()?,
        LogId::from_hex(id).ok()?,
    ))
}

/// Decode the plaintext of the segment stored as `object`: the manifest's
/// own checks, then its name: the sequence number and the stream tag.
pub fn decode(keys: &Keys, object: &str, json: &[u8]) -> Result<Segment> {
    let (seq, id) = parse_object(object)
        .ok_or_else(|| Error::corrupt(format!("log object {object}"), "bad name"))?;
    let what = manifest::describe::<SegmentManifest>(&id);
    let manifest: SegmentManifest = manifest::decode_plaintext(json, &what)?;
    if manifest.seq != seq {
        return Err(Error::corrupt(
            &what,
            "sequence number differs from its name",
        ));
    }
    let tag = keys.stream_tag(&manifest.account, &manifest.stream);
    if !object.starts_with(&format!("{tag}/")) {
        return Err(Error::corrupt(&what, "stored under another stream"));
    }
    Ok(Segment {
        id,
        object: object.to_string(),
        manifest,
    })
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
