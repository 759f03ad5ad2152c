//! The chunker on arbitrary data and parameters: boundaries respect min and
//! max, cover the input exactly, and the streaming and resumable forms agree
//! with the slice form.
#![no_main]

use cairn_chunker::{Chunker, ChunkerParams, Gear, ScanState};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u8, u8, u8, u8, [u8; 4], &[u8])| {
    let (avg_bits, min_div, max_mul, level, seed, data) = input;
    let avg = 1u32 << (7 + u32::from(avg_bits % 10));
    let min = ((avg >> (1 + u32::from(min_div % 3))).max(64)) & !1;
    let max = avg << (1 + u32::from(max_mul % 3));
    let Ok(params) = ChunkerParams::new(min, avg, max, level % 4) else {
        return;
    };
    let mut full_seed = [0u8; 32];
    full_seed[..4].copy_from_slice(&seed);
    let chunker = Chunker::new(params, Gear::from_seed(&full_seed));

    let lengths: Vec<usize> = chunker.chunks(data).map(<[u8]>::len).collect();
    assert_eq!(lengths.iter().sum::<usize>(), data.len());
    if let Some((_, body)) = lengths.split_last() {
        for &l in body {
            assert!(l >= min as usize && l <= max as usize);
        }
    }

    let mut stream = chunker.stream(data);
    let mut streamed = Vec::new();
    while let Ok(Some(c)) = stream.next_chunk() {
        streamed.push(c.len());
    }
    assert_eq!(streamed, lengths);

    // Resumable scanning, fed 97 bytes at a time.
    let mut scanned = Vec::new();
    let mut start = 0;
    while start < data.len() {
        let mut state = ScanState::new();
        let mut avail = 0;
        let len = loop {
            avail = (avail + 97).min(data.len() - start);
            let eof = start + avail == data.len();
            if let Some(len) = chunker.scan(&data[start..start + avail], &mut state, eof) {
                break len;
            }
        };
        scanned.push(len);
        start += len;
    }
    assert_eq!(scanned, lengths);
});
