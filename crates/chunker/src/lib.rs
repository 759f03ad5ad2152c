//! Content-defined chunking for cairn.
//!
//! This crate owns one thing: deciding where a byte stream is cut into chunks,
//! so that an edit near the start of a large file moves only the cut points
//! around the edit and every other chunk keeps its content (and therefore its
//! id in the repository).
//!
//! The algorithm is FastCDC as published in 2020 (Xia et al., "The Design of
//! Fast Content-Defined Chunking for Data Deduplication Based Storage
//! Systems"): a gear rolling hash, no cut before `min_size`, a strict mask up
//! to `avg_size` and a relaxed mask after it ("normalized chunking"), a forced
//! cut at `max_size`, and the hash advanced two bytes per step with a
//! pre-shifted table. The exact cut rule, the mask bit positions and the gear
//! table derivation are specified in `docs/FORMAT.md` ("Chunking") and pinned
//! by golden vectors in this crate's tests: changing any of them changes every
//! chunk id in every repository.
//!
//! The gear table is derived from a 32-byte seed. A repository derives its
//! seed from its master key, so chunk sizes do not reveal which known files a
//! repository holds; [`Gear::public`] is the all-zero seed used by tests and
//! benchmarks.
//!
//! What this crate must not know about: ids, hashing of chunk contents,
//! compression, encryption, packs or any repository object. It takes bytes (a
//! slice or a [`std::io::Read`]) and returns cut points.

#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

use std::io::{self, Read};

/// Smallest allowed `min_size`, in bytes.
pub const MIN_CHUNK_FLOOR: u32 = 64;
/// Largest allowed `max_size`, in bytes (64 MiB).
pub const MAX_CHUNK_CEILING: u32 = 64 << 20;

/// Error returned for chunker parameters that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamsError {
    /// The sizes are not ordered `min < avg < max`.
    #[error("chunk sizes must satisfy min < avg < max (got min {min}, avg {avg}, max {max})")]
    Order {
        /// Requested minimum size.
        min: u32,
        /// Requested average size.
        avg: u32,
        /// Requested maximum size.
        max: u32,
    },
    /// The average size is not a power of two.
    #[error("average chunk size must be a power of two (got {0})")]
    AverageNotPowerOfTwo(u32),
    /// A size is odd; the two-bytes-per-step scan needs even sizes.
    #[error("chunk sizes must be even (got {0})")]
    Odd(u32),
    /// A size is outside the supported range.
    #[error(
        "chunk sizes must lie between {MIN_CHUNK_FLOOR} bytes and {MAX_CHUNK_CEILING} bytes (got {0})"
    )]
    OutOfRange(u32),
    /// The normalization level is not 0 to 3.
    #[error("normalization level must be 0, 1, 2 or 3 (got {0})")]
    Normalization(u8),
}

/// Chunk size parameters. Validated on construction; stored in the
/// repository configuration so every client cuts the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkerParams {
    min_size: u32,
    avg_size: u32,
    max_size: u32,
    normalization: u8,
}

impl ChunkerParams {
    /// cairn's default: 512 KiB minimum, 1 MiB average, 8 MiB maximum,
    /// normalization level 1 (the sizes restic uses, so the benchmark
    /// compares like with like).
    pub const DEFAULT: ChunkerParams = ChunkerParams {
        min_size: 512 << 10,
        avg_size: 1 << 20,
        max_size: 8 << 20,
        normalization: 1,
    };

    /// Validate and build a parameter set.
    pub fn new(
        min_size: u32,
        avg_size: u32,
        max_size: u32,
        normalization: u8,
    ) -> Result<Self, ParamsError> {
        for size in [min_size, avg_size, max_size] {
            if !(MIN_CHUNK_FLOOR..=MAX_CHUNK_CEILING).contains(&size) {
                return Err(ParamsError::OutOfRange(size));
            }
            if size % 2 != 0 {
                return Err(ParamsError::Odd(size));
            }
        }
        if !(min_size < avg_size && avg_size < max_size) {
            return Err(ParamsError::Order {
                min: min_size,
                avg: avg_size,
                max: max_size,
            });
        }
        if !avg_size.is_power_of_two() {
            return Err(ParamsError::AverageNotPowerOfTwo(avg_size));
        }
        if normalization > 3 {
            return Err(ParamsError::Normalization(normalization));
        }
        Ok(Self {
            min_size,
            avg_size,
            max_size,
            normalization,
        })
    }

    /// Minimum chunk size in bytes (only the last chunk of an input may be smaller).
    pub fn min_size(&self) -> u32 {
        self.min_size
    }
    /// Target average chunk size in bytes (a power of two).
    pub fn avg_size(&self) -> u32 {
        self.avg_size
    }
    /// Maximum chunk size in bytes.
    pub fn max_size(&self) -> u32 {
        self.max_size
    }
    /// Normalization level (0 to 3).
    pub fn normalization(&self) -> u8 {
        self.normalization
    }
}

impl Default for ChunkerParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The 256-entry gear table of the rolling hash, and its copy shifted left by
/// one bit (used for the first byte of each two-byte step).
#[derive(Clone)]
pub struct Gear {
    table: [u64; 256],
    table_ls: [u64; 256],
}

impl std::fmt::Debug for Gear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The table of a repository is derived from its master key: print
        // nothing of it.
        f.write_str("Gear(..)")
    }
}

/// BLAKE3 `derive_key` context for the gear table. Fixed forever: the table
/// decides every cut point.
pub const GEAR_CONTEXT: &str = "cairn 2026-11-22 chunker gear table v1";

impl Gear {
    /// Derive the table from a 32-byte seed: the 2048-byte BLAKE3 XOF output
    /// of the seed (in `derive_key` mode with [`GEAR_CONTEXT`]), read as 256
    /// little-endian `u64`s.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let mut hasher = blake3::Hasher::new_derive_key(GEAR_CONTEXT);
        hasher.update(seed);
        let mut bytes = [0u8; 256 * 8];
        hasher.finalize_xof().fill(&mut bytes);
        let mut table = [0u64; 256];
        for (entry, raw) in table.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut word = [0u8; 8];
            word.copy_from_slice(raw);
            *entry = u64::from_le_bytes(word);
        }
        let mut table_ls = [0u64; 256];
        for (shifted, entry) in table_ls.iter_mut().zip(table.iter()) {
            *shifted = entry << 1;
        }
        Self { table, table_ls }
    }

    /// The table of the all-zero seed, for tests, benchmarks and golden vectors.
    pub fn public() -> Self {
        Self::from_seed(&[0u8; 32])
    }

    /// One entry of the table (exposed for golden-vector tests).
    pub fn entry(&self, byte: u8) -> u64 {
        self.table[usize::from(byte)]
    }
}

/// A mask with `bits` one-bits spread evenly over bit positions 16..=62.
///
/// Bit `k` of the gear hash depends on the last `k + 1` bytes, so low bit
/// positions would make the cut decision depend on too short a window; bit 63
/// stays clear so that the pre-shifted mask (`mask << 1`) loses nothing.
fn spread_mask(bits: u32) -> u64 {
    const LOW: u32 = 16;
    const SPAN: u32 = 47; // positions 16..=62
    let mut mask = 0u64;
    for i in 0..bits {
        mask |= 1u64 << (LOW + i * SPAN / bits);
    }
    mask
}

/// Cuts byte streams into content-defined chunks.
#[derive(Debug, Clone)]
pub struct Chunker {
    params: ChunkerParams,
    gear: Box<Gear>,
    mask_s: u64,
    mask_l: u64,
    mask_s_ls: u64,
    mask_l_ls: u64,
}

impl Chunker {
    /// Build a chunker for validated parameters and a gear table.
    pub fn new(params: ChunkerParams, gear: Gear) -> Self {
        let bits = params.avg_size.trailing_zeros();
        let level = u32::from(params.normalization);
        // `ChunkerParams::new` bounds avg to [128, 64 MiB], so bits is in
        // 7..=26 and bits ± level stays within 4..=29.
        let mask_s = spread_mask(bits + level);
        let mask_l = spread_mask(bits.saturating_sub(level).max(1));
        Self {
            params,
            gear: Box::new(gear),
            mask_s,
            mask_l,
            mask_s_ls: mask_s << 1,
            mask_l_ls: mask_l << 1,
        }
    }

    /// The parameters this chunker cuts with.
    pub fn params(&self) -> &ChunkerParams {
        &self.params
    }

    /// Length of the first chunk of `data`, assuming `data` holds everything
    /// that is left of the input or at least `max_size` bytes of it.
    ///
    /// The result is always at least 1 for non-empty input, at most
    /// `max_size`, and at least `min_size` unless `data` is shorter.
    pub fn cut(&self, data: &[u8]) -> usize {
        self.scan(data, &mut ScanState::new(), true)
            .unwrap_or(data.len())
    }

    /// Resumable form of [`Chunker::cut`] for data that arrives in pieces.
    ///
    /// `data` is everything read so far from the start of the current chunk;
    /// `state` remembers how far it has been hashed, so each byte is hashed
    /// once however many times `scan` is called. Returns the chunk length
    /// once it is decided: a boundary was found, `data` reached `max_size`,
    /// or `eof` says no more data will come. `None` means "read more".
    /// Start each chunk with a fresh [`ScanState`]. The result equals
    /// [`Chunker::cut`] on the complete input.
    pub fn scan(&self, data: &[u8], state: &mut ScanState, eof: bool) -> Option<usize> {
        let min = self.params.min_size as usize;
        let max = self.params.max_size as usize;
        let avg = self.params.avg_size as usize;
        let decided = eof || data.len() >= max;
        let n = data.len().min(max);
        if n <= min {
            return decided.then_some(n);
        }
        // Pairs start at `min` (even); a pair is scanned once both its bytes
        // are in. Positions before `avg` use the strict mask (for inputs
        // that end before `avg`, every position is before it).
        let limit = min + ((n - min) & !1);
        if state.pos < min {
            state.pos = min;
            state.hash = 0;
        }
        let gear = &self.gear.table;
        let gear_ls = &self.gear.table_ls;
        let mut hash = state.hash;
        let mut pos = state.pos;
        let strict_end = avg.min(limit).max(pos);
        for pair in data[pos..strict_end].chunks_exact(2) {
            hash = (hash << 2).wrapping_add(gear_ls[usize::from(pair[0])]);
            if hash & self.mask_s_ls == 0 {
                return Some(pos + 1);
            }
            hash = hash.wrapping_add(gear[usize::from(pair[1])]);
            if hash & self.mask_s == 0 {
                return Some(pos + 2);
            }
            pos += 2;
        }
        for pair in data[pos..limit].chunks_exact(2) {
            hash = (hash << 2).wrapping_add(gear_ls[usize::from(pair[0])]);
            if hash & self.mask_l_ls == 0 {
                return Some(pos + 1);
            }
            hash = hash.wrapping_add(gear[usize::from(pair[1])]);
            if hash & self.mask_l == 0 {
                return Some(pos + 2);
            }
            pos += 2;
        }
        state.pos = pos;
        state.hash = hash;
        decided.then_some(n)
    }

    /// Iterate over the chunks of an in-memory buffer.
    pub fn chunks<'a>(&'a self, data: &'a [u8]) -> SliceChunks<'a> {
        SliceChunks {
            chunker: self,
            rest: data,
        }
    }

    /// Cut a stream. Memory stays bounded by twice `max_size` whatever the
    /// length of the stream.
    pub fn stream<R: Read>(&self, reader: R) -> StreamChunker<'_, R> {
        self.stream_with_buffer(reader, Vec::new())
    }

    /// Like [`Chunker::stream`], reusing a buffer from an earlier stream
    /// (see [`StreamChunker::into_parts`]) to avoid a large allocation per
    /// input.
    pub fn stream_with_buffer<R: Read>(&self, reader: R, mut buf: Vec<u8>) -> StreamChunker<'_, R> {
        let capacity = 2 * self.params.max_size as usize;
        buf.resize(capacity, 0);
        StreamChunker {
            chunker: self,
            reader,
            buf,
            start: 0,
            end: 0,
            eof: false,
            offset: 0,
        }
    }
}

/// Progress of [`Chunker::scan`] through the current chunk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanState {
    pos: usize,
    hash: u64,
}

impl ScanState {
    /// State for the start of a chunk.
    pub const fn new() -> Self {
        Self { pos: 0, hash: 0 }
    }
}

/// Iterator over the chunks of a slice; see [`Chunker::chunks`].
#[derive(Debug)]
pub struct SliceChunks<'a> {
    chunker: &'a Chunker,
    rest: &'a [u8],
}

impl<'a> Iterator for SliceChunks<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let len = self.chunker.cut(self.rest);
        let (chunk, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(chunk)
    }
}

/// Chunks read from a [`Read`]; see [`Chunker::stream`].
///
/// It yields the same chunks as [`Chunker::chunks`] over the concatenated
/// input, whatever sizes the reader's `read` calls return.
#[derive(Debug)]
pub struct StreamChunker<'a, R> {
    chunker: &'a Chunker,
    reader: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    offset: u64,
}

impl<R: Read> StreamChunker<'_, R> {
    /// The next chunk, borrowed from the internal buffer until the next call;
    /// `None` at the end of the input.
    pub fn next_chunk(&mut self) -> io::Result<Option<&[u8]>> {
        let max = self.chunker.params.max_size as usize;
        if self.end - self.start < max && !self.eof {
            self.fill()?;
        }
        if self.start == self.end {
            return Ok(None);
        }
        let available = &self.buf[self.start..self.end];
        let len = self.chunker.cut(available);
        let chunk_start = self.start;
        self.start += len;
        self.offset += len as u64;
        Ok(Some(&self.buf[chunk_start..chunk_start + len]))
    }

    /// Offset in the stream of the end of the last chunk returned (the number
    /// of bytes chunked so far).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Give back the reader (for example to inspect a file after reading it).
    pub fn into_inner(self) -> R {
        self.reader
    }

    /// Give back the reader and the buffer, for reuse with
    /// [`Chunker::stream_with_buffer`].
    pub fn into_parts(self) -> (R, Vec<u8>) {
        (self.reader, self.buf)
    }

    /// Move the unconsumed bytes to the front and read until the buffer is
    /// full or the reader reports end of input.
    fn fill(&mut self) -> io::Result<()> {
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        while self.end < self.buf.len() {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
