//! `ChunkSet`: which chunks of one file are present (or wanted, or offered),
//! as a bitmap with the few operations the store, resume, the scheduler and
//! the chunk server need. Its wire form is BitTorrent's bitfield: chunk `i`
//! is bit `7 - i % 8` of byte `i / 8`, `ceil(len / 8)` bytes, spare bits
//! zero, so every set has exactly one encoding.
//!
//! Invariant: `count` equals the number of set bits, all of them `< len`.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ChunkSetError {
    #[error("chunk map of {got} bytes for {len} chunks (expected {want})")]
    Length { len: u32, got: usize, want: usize },
    #[error("chunk map sets bits past its {0} chunks")]
    SpareBits(u32),
}

#[derive(Clone, PartialEq, Eq)]
pub struct ChunkSet {
    words: Vec<u64>,
    len: u32,
    count: u32,
}

impl ChunkSet {
    /// No chunk of `len`.
    pub fn empty(len: u32) -> Self {
        ChunkSet {
            words: vec![0; (len as usize).div_ceil(64)],
            len,
            count: 0,
        }
    }

    /// Every chunk of `len`.
    pub fn full(len: u32) -> Self {
        let mut set = Self::empty(len);
        for w in &mut set.words {
            *w = u64::MAX;
        }
        if !len.is_multiple_of(64) {
            if let Some(last) = set.words.last_mut() {
                *last = (1u64 << (len % 64)) - 1;
            }
        }
        set.count = len;
        set
    }

    /// The chunks for which `has` says yes.
    pub fn from_fn(len: u32, mut has: impl FnMut(u32) -> bool) -> Self {
        let mut set = Self::empty(len);
        for i in 0..len {
            if has(i) {
                set.insert(i);
            }
        }
        set
    }

    /// How many chunks the file has (set or not).
    pub fn len(&self) -> u32 {
        self.len
    }

    /// How many chunks are in the set.
    pub fn count(&self) -> u32 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn is_complete(&self) -> bool {
        self.count == self.len
    }

    pub fn contains(&self, i: u32) -> bool {
        i < self.len && self.words[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    /// Adds chunk `i`; returns whether it was new. Indexes past the end are
    /// ignored (returns `false`).
    pub fn insert(&mut self, i: u32) -> bool {
        if i >= self.len || self.contains(i) {
            return false;
        }
        self.words[(i / 64) as usize] |= 1 << (i % 64);
        self.count += 1;
        true
    }

    /// Adds every chunk of `other` (a set of the same length; a set of
    /// another length adds nothing).
    pub fn union_with(&mut self, other: &ChunkSet) {
        if other.len != self.len {
            return;
        }
        for (mine, theirs) in self.words.iter_mut().zip(&other.words) {
            *mine |= theirs;
        }
        self.count = self.words.iter().map(|w| w.count_ones()).sum();
    }

    /// Removes chunk `i`; returns whether it was there.
    pub fn remove(&mut self, i: u32) -> bool {
        if !self.contains(i) {
            return false;
        }
        self.words[(i / 64) as usize] &= !(1 << (i % 64));
        self.count -= 1;
        true
    }

    /// The chunks in the set, in order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len).filter(|&i| self.contains(i))
    }

    /// The chunks not in the set, in order.
    pub fn missing(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len).filter(|&i| !self.contains(i))
    }

    /// The wire form (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![0u8; Self::encoded_len(self.len)];
        for i in self.iter() {
            out[(i / 8) as usize] |= 0x80 >> (i % 8);
        }
        out
    }

    /// Bytes of the wire form of a set of `len` chunks.
    pub fn encoded_len(len: u32) -> usize {
        (len as usize).div_ceil(8)
    }

    /// Parses the wire form of a set of `len` chunks: exactly
    /// [`encoded_len`](Self::encoded_len) bytes, spare bits zero.
    pub fn decode(bytes: &[u8], len: u32) -> Result<Self, ChunkSetError> {
        let want = Self::encoded_len(len);
        if bytes.len() != want {
            return Err(ChunkSetError::Length {
                len,
                got: bytes.len(),
                want,
            });
        }
        let mut set = Self::empty(len);
        for (byte_index, &byte) in bytes.iter().enumerate() {
            for bit in 0..8u32 {
                if byte & (0x80 >> bit) == 0 {
                    continue;
                }
                let i = byte_index as u32 * 8 + bit;
                if i >= len {
                    return Err(ChunkSetError::SpareBits(len));
                }
                set.insert(i);
            }
        }
        Ok(set)
    }
}

impl std::fmt::Debug for ChunkSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChunkSet({}/{})", self.count, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_union_adds_what_the_other_has_and_counts_it() {
        let mut a = ChunkSet::from_fn(130, |i| i % 3 == 0);
        let b = ChunkSet::from_fn(130, |i| i % 2 == 0 || i == 129);
        a.union_with(&b);
        assert_eq!(
            a,
            ChunkSet::from_fn(130, |i| i % 3 == 0 || i % 2 == 0 || i == 129)
        );
        assert_eq!(a.count(), a.iter().count() as u32);
        let before = a.clone();
        a.union_with(&ChunkSet::full(131));
        assert_eq!(a, before, "another length adds nothing");
    }

    #[test]
    fn insert_remove_count_and_iterate() {
        let mut s = ChunkSet::empty(130);
        assert!(s.is_empty() && !s.is_complete());
        assert!(s.insert(0) && s.insert(64) && s.insert(129));
        assert!(!s.insert(64), "already there");
        assert!(!s.insert(130), "past the end");
        assert_eq!(s.count(), 3);
        assert_eq!(s.iter().collect::<Vec<_>>(), [0, 64, 129]);
        assert_eq!(s.missing().count(), 127);
        assert!(s.remove(64) && !s.remove(64));
        assert!(!s.contains(64) && s.contains(129) && !s.contains(1000));
        assert_eq!(s.count(), 2);
    }

    #[test]
    fn full_sets_have_every_chunk_and_no_more() {
        for len in [0, 1, 63, 64, 65, 128, 200] {
            let s = ChunkSet::full(len);
            assert_eq!(s.count(), len);
            assert!(s.is_complete());
            assert_eq!(s.iter().count() as u32, len);
            assert!(!s.contains(len));
            assert_eq!(ChunkSet::from_fn(len, |_| true), s);
        }
        assert!(ChunkSet::full(0).is_complete() && ChunkSet::empty(0).is_complete());
    }

    #[test]
    fn wire_form_round_trips_and_is_canonical() {
        let s = ChunkSet::from_fn(11, |i| i % 3 == 0); // 0, 3, 6, 9
        let bytes = s.encode();
        assert_eq!(bytes, [0b1001_0010, 0b0100_0000]);
        assert_eq!(ChunkSet::decode(&bytes, 11), Ok(s));
        assert_eq!(ChunkSet::decode(&[], 0), Ok(ChunkSet::empty(0)));
        assert!(matches!(
            ChunkSet::decode(&bytes, 17),
            Err(ChunkSetError::Length { want: 3, .. })
        ));
        assert_eq!(
            ChunkSet::decode(&[0, 0b0001_0000], 11),
            Err(ChunkSetError::SpareBits(11))
        );
        for len in [1, 7, 8, 9, 100] {
            let s = ChunkSet::full(len);
            assert_eq!(ChunkSet::decode(&s.encode(), len), Ok(s));
        }
    }
}
