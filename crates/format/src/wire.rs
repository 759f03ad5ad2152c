//! Bounds-checked little-endian decoding shared by the binary formats (pack
//! headers, index objects, trees). Every read checks the remaining length
//! first, so malformed input becomes [`Error::Corrupt`], never a panic, and
//! counts read from the input are checked against the bytes left before
//! anything is allocated for them.

use crate::error::{Error, Result};

/// A cursor over untrusted bytes.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'a str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'a str) -> Self {
        Self { buf, pos: 0, what }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn error(&self, reason: impl Into<String>) -> Error {
        Error::corrupt(
            self.what,
            format!("{} (at byte {})", reason.into(), self.pos),
        )
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.error(format!(
                "needs {n} more bytes, only {} left",
                self.remaining()
            )));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    /// A `u32` count of items, each at least `min_item_len` bytes long,
    /// rejected when the rest of the input cannot possibly hold them.
    pub(crate) fn count(&mut self, min_item_len: usize) -> Result<usize> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_item_len.max(1)) > self.remaining() {
            return Err(self.error(format!(
                "count {n} cannot fit in the {} bytes left",
                self.remaining()
            )));
        }
        Ok(n)
    }

    /// A `u32`-length-prefixed byte string.
    pub(crate) fn blob(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.bytes(n)
    }

    pub(crate) fn finish(&self) -> Result<()> {
        if self.remaining() != 0 {
            return Err(self.error(format!("{} unexpected trailing bytes", self.remaining())));
        }
        Ok(())
    }
}

/// Little-endian writers for `Vec<u8>`.
pub(crate) trait Put {
    fn put_u8(&mut self, v: u8);
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
    fn put_i64(&mut self, v: i64);
    fn put_blob(&mut self, v: &[u8]);
}

impl Put for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_i64(&mut self, v: i64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_blob(&mut self, v: &[u8]) {
        // Callers bound every length-prefixed field well below 4 GiB (names,
        // symlink targets); saturating keeps a pathological one detectable
        // on decode instead of silently wrapping.
        self.put_u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
        self.extend_from_slice(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounded() {
        let mut buf = Vec::new();
        buf.put_u32(7);
        buf.put_blob(b"abc");
        let mut r = Reader::new(&buf, "test");
        assert_eq!(r.u32().unwrap(), 7);
        assert_eq!(r.blob().unwrap(), b"abc");
        r.finish().unwrap();
        assert!(r.u8().is_err());

        let mut huge = Vec::new();
        huge.put_u32(u32::MAX);
        let mut r = Reader::new(&huge, "test");
        assert!(matches!(r.blob(), Err(Error::Corrupt { .. })));
        let mut r = Reader::new(&huge, "test");
        assert!(r.count(41).is_err());
    }
}
