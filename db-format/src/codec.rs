//! Byte-level primitives of the snapshot body: LEB128 varints, zigzag signed integers,
//! length-prefixed strings, and a bounds-checked cursor that turns every malformed byte
//! sequence into an [`Error`] instead of a panic.

use crate::error::{Error, Result};

/// The fixed header size in bytes (FORMAT.md, "Header").
pub(crate) const HEADER_LEN: usize = 128;
/// Offset of the header checksum: it covers bytes `0..HEADER_CRC_OFFSET`.
pub(crate) const HEADER_CRC_OFFSET: usize = 124;

/// Record tags in the body.
pub(crate) const TAG_STRING: u8 = 1;
pub(crate) const TAG_DEPENDENCIES: u8 = 2;
pub(crate) const TAG_PROJECT: u8 = 3;
pub(crate) const TAG_CONDA: u8 = 4;

pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

pub(crate) fn put_signed(out: &mut Vec<u8>, value: i64) {
    put_varint(out, ((value << 1) ^ (value >> 63)) as u64);
}

pub(crate) fn put_str(out: &mut Vec<u8>, value: &str) {
    put_varint(out, value.len() as u64);
    out.extend_from_slice(value.as_bytes());
}

/// Reads body bytes from `pos`, checking every access against the end of the slice.
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8], pos: u64) -> Result<Self> {
        let pos = usize::try_from(pos)
            .ok()
            .filter(|&pos| pos < bytes.len())
            .ok_or(Error::OutOfRange {
                what: "record",
                offset: pos,
            })?;
        Ok(Cursor { bytes, pos })
    }

    pub(crate) fn malformed(&self, what: impl Into<String>) -> Error {
        Error::Malformed {
            offset: self.pos as u64,
            what: what.into(),
        }
    }

    pub(crate) fn byte(&mut self) -> Result<u8> {
        let byte = *self
            .bytes
            .get(self.pos)
            .ok_or_else(|| self.malformed("record runs past the end of the body"))?;
        self.pos += 1;
        Ok(byte)
    }

    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| self.malformed(format!("{len} bytes run past the end of the body")))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn varint(&mut self) -> Result<u64> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(self.malformed("varint overflows 64 bits"));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.malformed("varint longer than 10 bytes"))
    }

    pub(crate) fn signed(&mut self) -> Result<i64> {
        let raw = self.varint()?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// A count of items that each take at least one byte: larger than the rest of the body
    /// means corruption, and refusing it early keeps allocations bounded.
    pub(crate) fn count(&mut self) -> Result<usize> {
        let count = self.varint()?;
        let remaining = (self.bytes.len() - self.pos) as u64;
        if count > remaining {
            return Err(self.malformed(format!("count {count} exceeds the {remaining} bytes left")));
        }
        // Cannot truncate: count <= remaining <= usize::MAX.
        Ok(count as usize)
    }

    pub(crate) fn str(&mut self) -> Result<&'a str> {
        let len = self.count()?;
        let start = self.pos;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map_err(|_| Error::Malformed {
            offset: start as u64,
            what: "string is not UTF-8".into(),
        })
    }

    pub(crate) fn string(&mut self) -> Result<String> {
        self.str().map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        for value in [
            0,
            1,
            127,
            128,
            300,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            let mut cursor = Cursor::new(&out, 0).expect("non-empty");
            assert_eq!(cursor.varint().expect("decodes"), value);
            assert_eq!(cursor.pos, out.len());
        }
        for value in [0, 1, -1, i64::MIN, i64::MAX, 1_700_000_000, -1_700_000_000] {
            let mut out = Vec::new();
            put_signed(&mut out, value);
            let mut cursor = Cursor::new(&out, 0).expect("non-empty");
            assert_eq!(cursor.signed().expect("decodes"), value);
        }
    }

    #[test]
    fn overlong_varints_are_errors() {
        let bytes = [0xff; 11];
        assert!(Cursor::new(&bytes, 0).expect("non-empty").varint().is_err());
        let mut overflow = vec![0xff; 9];
        overflow.push(0x02);
        assert!(
            Cursor::new(&overflow, 0)
                .expect("non-empty")
                .varint()
                .is_err()
        );
    }
}
