//! Reads of a local store's objects in the calling thread: the file behind
//! an object read with `pread`, without crossing to the runtime's blocking
//! pool (two thread hand-offs per read, which a restore's thousands of
//! range reads and a backup's tree per directory paid for).

use crate::{Error, Result};
use bytes::Bytes;
use object_store::path::Path as StorePath;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A read of a local object's file, as the store's error: a missing file
/// is [`Error::NotFound`] under the object's path.
fn read_error(file: &Path, object: &StorePath, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::NotFound {
            what: object.to_string(),
        }
    } else {
        Error::io(file, e)
    }
}

/// Read a whole local object in the calling thread.
pub(crate) fn read_whole(file: &Path, object: &StorePath) -> Result<Bytes> {
    std::fs::read(file)
        .map(Bytes::from)
        .map_err(|e| read_error(file, object, e))
}

/// Read a byte range of a local object in the calling thread. A range past
/// the end yields fewer bytes, which the caller reports as corrupt.
pub(crate) fn read_range(file: &Path, object: &StorePath, range: Range<u64>) -> Result<Bytes> {
    let f = std::fs::File::open(file).map_err(|e| read_error(file, object, e))?;
    let want = usize::try_from(range.end.saturating_sub(range.start))
        .map_err(|_| Error::invalid("range", "larger than memory"))?;
    let mut buf = vec![0u8; want];
    let mut done = 0;
    while done < want {
        match f.read_at(&mut buf[done..], range.start + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_error(file, object, e)),
        }
    }
    buf.truncate(done);
    Ok(Bytes::from(buf))
}

/// Read several local objects with up to `concurrency` threads (a cold
/// disk answers several requests at once); results in input order.
pub(crate) fn read_many(
    names: &[String],
    concurrency: usize,
    read: impl Fn(&str) -> Result<Bytes> + Sync,
) -> Vec<Result<Bytes>> {
    let threads = concurrency.clamp(1, 8).min(names.len());
    if threads <= 1 {
        return names.iter().map(|n| read(n)).collect();
    }
    let next = AtomicUsize::new(0);
    let mut out: Vec<(usize, Result<Bytes>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut got = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(name) = names.get(i) else { break };
                        got.push((i, read(name)));
                    }
                    got
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn missing_files_are_not_found_and_short_ranges_are_short() {
        let dir = tempfile::tempdir().unwrap();
        let object = StorePath::from("data/ab/ab");
        let missing = dir.path().join("nothing");
        assert!(read_whole(&missing, &object).unwrap_err().is_not_found());
        assert!(
            read_range(&missing, &object, 0..4)
                .unwrap_err()
                .is_not_found()
        );
        let file = dir.path().join("f");
        std::fs::write(&file, b"0123456789").unwrap();
        assert_eq!(&read_range(&file, &object, 2..5).unwrap()[..], b"234");
        // Past the end: what is there, which the store reports as corrupt.
        assert_eq!(&read_range(&file, &object, 8..20).unwrap()[..], b"89");
    }

    #[test]
    fn many_reads_keep_the_input_order() {
        let names: Vec<String> = (0..100).map(|i| i.to_string()).collect();
        let got = read_many(&names, 8, |n| {
            if n == "7" {
                Err(Error::NotFound { what: n.into() })
            } else {
                Ok(Bytes::from(n.as_bytes().to_vec()))
            }
        });
        assert_eq!(got.len(), 100);
        for (i, r) in got.iter().enumerate() {
            match r {
                Ok(b) => assert_eq!(&b[..], i.to_string().as_bytes()),
                Err(e) => assert!(i == 7 && e.is_not_found()),
            }
        }
    }
}
