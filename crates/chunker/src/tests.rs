use super::*;
use proptest::prelude::*;
use std::collections::HashSet;

/// SplitMix64: a tiny deterministic generator, so test data is identical on
/// every platform and the golden vectors below mean something.
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn small_params() -> ChunkerParams {
    ChunkerParams::new(2 << 10, 8 << 10, 32 << 10, 1).unwrap()
}

fn lengths(chunker: &Chunker, data: &[u8]) -> Vec<usize> {
    chunker.chunks(data).map(<[u8]>::len).collect()
}

/// A reader that hands out data in awkward, varying pieces.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
    calls: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        let want = 1 + (self.calls * 7919 + self.step) % self.step.max(1);
        let n = want.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn stream_lengths<R: Read>(chunker: &Chunker, reader: R) -> Vec<usize> {
    let mut stream = chunker.stream(reader);
    let mut out = Vec::new();
    while let Some(chunk) = stream.next_chunk().unwrap() {
        out.push(chunk.len());
    }
    out
}

#[test]
fn params_are_validated() {
    assert!(ChunkerParams::new(1024, 4096, 16384, 1).is_ok());
    assert_eq!(
        ChunkerParams::new(4096, 4096, 16384, 1),
        Err(ParamsError::Order {
            min: 4096,
            avg: 4096,
            max: 16384
        })
    );
    assert_eq!(
        ChunkerParams::new(1024, 5000, 16384, 1),
        Err(ParamsError::AverageNotPowerOfTwo(5000))
    );
    assert_eq!(
        ChunkerParams::new(1025, 4096, 16384, 1),
        Err(ParamsError::Odd(1025))
    );
    assert_eq!(
        ChunkerParams::new(32, 4096, 16384, 1),
        Err(ParamsError::OutOfRange(32))
    );
    assert_eq!(
        ChunkerParams::new(1024, 4096, 16384, 4),
        Err(ParamsError::Normalization(4))
    );
    assert!(ChunkerParams::new(1024, 4096, 128 << 20, 1).is_err());
}

#[test]
fn masks_have_the_requested_number_of_bits_and_leave_bit_63_clear() {
    for bits in 1..=32 {
        let mask = spread_mask(bits);
        assert_eq!(mask.count_ones(), bits);
        assert_eq!(mask >> 63, 0);
        assert_eq!(mask & 0xFFFF, 0);
    }
}

/// Golden vectors: these values define the chunk boundaries of every
/// repository written with the public table. If this test fails, the
/// chunker changed and existing repositories would stop deduplicating
/// against new backups: bump the chunker version instead.
#[test]
fn golden_gear_table() {
    let gear = Gear::public();
    assert_eq!(gear.entry(0), GOLDEN_GEAR[0]);
    assert_eq!(gear.entry(1), GOLDEN_GEAR[1]);
    assert_eq!(gear.entry(255), GOLDEN_GEAR[2]);
    let keyed = Gear::from_seed(&[7u8; 32]);
    assert_ne!(keyed.entry(0), gear.entry(0));
}

/// Entries 0, 1 and 255 of the public table; cross-checked against the
/// Python `blake3` package (`derive_key_context`, 2048-byte XOF output).
const GOLDEN_GEAR: [u64; 3] = [
    0xf8f9_2a1a_7dab_aa1b,
    0x268a_a288_1233_c809,
    0x47f1_71aa_b1e0_76f0,
];

#[test]
fn golden_boundaries() {
    let data = pseudo_random(1 << 20, 42);
    let chunker = Chunker::new(small_params(), Gear::public());
    let got = lengths(&chunker, &data);
    assert_eq!(got.iter().sum::<usize>(), data.len());
    assert_eq!(&got[..GOLDEN_LENGTHS.len()], &GOLDEN_LENGTHS[..]);
    assert_eq!(got.len(), GOLDEN_COUNT);
}

const GOLDEN_LENGTHS: [usize; 8] = [9179, 2446, 8353, 8353, 11380, 8378, 8653, 2677];
const GOLDEN_COUNT: usize = 103;

#[test]
fn default_parameters_average_near_target_on_random_data() {
    let data = pseudo_random(64 << 20, 1);
    let chunker = Chunker::new(ChunkerParams::DEFAULT, Gear::public());
    let got = lengths(&chunker, &data);
    let mean = data.len() / got.len();
    // min 512 KiB + roughly avg beyond it; normalization keeps it tight.
    assert!(
        (768 << 10..=2 << 20).contains(&mean),
        "mean chunk size {mean} outside the expected range"
    );
}

#[test]
fn empty_and_tiny_inputs() {
    let chunker = Chunker::new(small_params(), Gear::public());
    assert_eq!(chunker.chunks(&[]).count(), 0);
    assert_eq!(lengths(&chunker, &[1, 2, 3]), vec![3]);
    assert_eq!(stream_lengths(&chunker, &[][..]), Vec::<usize>::new());
    let zeros = vec![0u8; 100 << 10];
    // A run of zeros never matches a mask: it is cut at max_size.
    assert!(
        lengths(&chunker, &zeros)
            .iter()
            .all(|&l| l == 32 << 10 || l == (100 << 10) % (32 << 10))
    );
}

#[test]
fn an_edit_near_the_start_changes_only_nearby_chunks() {
    let chunker = Chunker::new(small_params(), Gear::public());
    let original = pseudo_random(8 << 20, 7);
    let before: HashSet<Vec<u8>> = chunker.chunks(&original).map(<[u8]>::to_vec).collect();

    for edit in 0..3 {
        let mut edited = original.clone();
        match edit {
            0 => {
                edited.splice(1000..1000, [1u8, 2, 3]);
            }
            1 => {
                edited.drain(5000..5007);
            }
            _ => edited[20_000] ^= 0xff,
        }
        let after: Vec<Vec<u8>> = chunker.chunks(&edited).map(<[u8]>::to_vec).collect();
        let survived = after.iter().filter(|c| before.contains(*c)).count();
        assert!(
            survived + 3 >= after.len(),
            "edit {edit}: only {survived} of {} chunks survived",
            after.len()
        );
        assert!(after.len() > 100);
    }
}

#[test]
fn stream_matches_slice_for_large_default_input() {
    let data = pseudo_random(40 << 20, 3);
    let chunker = Chunker::new(ChunkerParams::DEFAULT, Gear::from_seed(&[9; 32]));
    let slice = lengths(&chunker, &data);
    let stream = stream_lengths(
        &chunker,
        Trickle {
            data: &data,
            step: 300_000,
            calls: 0,
        },
    );
    assert_eq!(slice, stream);
}

#[test]
fn stream_reports_read_errors() {
    struct Failing;
    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("disk on fire"))
        }
    }
    let chunker = Chunker::new(small_params(), Gear::public());
    let mut stream = chunker.stream(Failing);
    let err = stream.next_chunk().unwrap_err();
    assert_eq!(err.to_string(), "disk on fire");
}

fn arb_params() -> impl Strategy<Value = ChunkerParams> {
    (6u32..=14, 1u32..=3, 1u32..=3, 0u8..=3).prop_map(|(avg_bits, min_div, max_mul, level)| {
        let avg = 1u32 << (avg_bits + 1);
        let min = (avg >> min_div).max(MIN_CHUNK_FLOOR) & !1;
        let max = avg << max_mul;
        ChunkerParams::new(min, avg, max, level).unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn boundaries_respect_min_and_max(
        params in arb_params(),
        seed in any::<u64>(),
        len in 0usize..300_000,
    ) {
        let data = pseudo_random(len, seed);
        let chunker = Chunker::new(params, Gear::public());
        let got = lengths(&chunker, &data);
        prop_assert_eq!(got.iter().sum::<usize>(), len);
        let (last, body) = match got.split_last() {
            Some(split) => split,
            None => return Ok(()),
        };
        for &l in body {
            prop_assert!(l >= params.min_size() as usize, "chunk {} < min", l);
            prop_assert!(l <= params.max_size() as usize, "chunk {} > max", l);
        }
        prop_assert!(*last >= 1 && *last <= params.max_size() as usize);
    }

    #[test]
    fn stream_equals_slice(
        params in arb_params(),
        seed in any::<u64>(),
        len in 0usize..200_000,
        step in 1usize..50_000,
    ) {
        let data = pseudo_random(len, seed);
        let chunker = Chunker::new(params, Gear::from_seed(&[seed as u8; 32]));
        let slice = lengths(&chunker, &data);
        let stream = stream_lengths(&chunker, Trickle { data: &data, step, calls: 0 });
        prop_assert_eq!(slice, stream);
    }

    #[test]
    fn cutting_is_deterministic_and_local(
        seed in any::<u64>(),
        prefix in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        // Prepending bytes changes the first chunks only: the chunk
        // sequence re-synchronises within a few chunks. How many is a
        // matter of chance (a cut closer than the minimum size to the
        // shifted sequence's last cut is skipped; seven chunks for one
        // seed in the regressions file), so the bound is in bytes: every
        // chunk that starts four maximum chunk sizes in is shared.
        let params = small_params();
        let chunker = Chunker::new(params, Gear::public());
        let data = pseudo_random(600_000, seed);
        let mut shifted = prefix.clone();
        shifted.extend_from_slice(&data);
        let a: Vec<&[u8]> = chunker.chunks(&data).collect();
        let b: Vec<&[u8]> = chunker.chunks(&shifted).collect();
        let in_b: HashSet<&[u8]> = b.iter().copied().collect();
        let settled = 4 * params.max_size() as usize;
        let mut start = 0usize;
        for c in &a {
            if start >= settled {
                prop_assert!(in_b.contains(c), "the chunk at {} is not shared", start);
            }
            start += c.len();
        }
        prop_assert_eq!(a.iter().map(|c| c.len()).sum::<usize>() + prefix.len(),
            b.iter().map(|c| c.len()).sum::<usize>());
    }
}

/// The cut rule exactly as `docs/FORMAT.md` states it: one byte per step,
/// strict mask before the (even-aligned) centre, relaxed mask after it.
fn reference_cut(c: &Chunker, data: &[u8]) -> usize {
    let min = c.params.min_size as usize;
    let avg = c.params.avg_size as usize;
    let max = c.params.max_size as usize;
    if data.len() <= min {
        return data.len();
    }
    let n = data.len().min(max);
    let center = avg.min(n);
    let strict_end = min + ((center - min) & !1);
    let relaxed_end = strict_end + ((n - strict_end) & !1);
    let mut hash = 0u64;
    for (i, &byte) in data.iter().enumerate().take(relaxed_end).skip(min) {
        hash = (hash << 1).wrapping_add(c.gear.entry(byte));
        let mask = if i < strict_end { c.mask_s } else { c.mask_l };
        if hash & mask == 0 {
            return i + 1;
        }
    }
    n
}

/// Cut a whole input with `scan`, feeding it in pieces of `step` bytes.
fn scan_lengths(chunker: &Chunker, data: &[u8], step: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < data.len() {
        let mut state = ScanState::new();
        let mut avail = 0;
        let len = loop {
            avail = (avail + step).min(data.len() - start);
            let eof = start + avail == data.len();
            if let Some(len) = chunker.scan(&data[start..start + avail], &mut state, eof) {
                break len;
            }
        };
        out.push(len);
        start += len;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn scanning_in_pieces_equals_cutting(
        params in arb_params(),
        seed in any::<u64>(),
        len in 0usize..200_000,
        step in 1usize..40_000,
    ) {
        let data = pseudo_random(len, seed);
        let chunker = Chunker::new(params, Gear::from_seed(&[seed as u8; 32]));
        prop_assert_eq!(scan_lengths(&chunker, &data, step), lengths(&chunker, &data));
    }

    #[test]
    fn optimized_cut_equals_the_reference_rule(
        params in arb_params(),
        seed in any::<u64>(),
        len in 0usize..200_000,
    ) {
        let data = pseudo_random(len, seed);
        let chunker = Chunker::new(params, Gear::from_seed(&[seed as u8; 32]));
        let mut rest = &data[..];
        while !rest.is_empty() {
            let fast = chunker.cut(rest);
            prop_assert_eq!(fast, reference_cut(&chunker, rest));
            rest = &rest[fast..];
        }
    }
}
