//! The `have` bitfield: one bit per part, most significant bit first, `ceil(parts/8)` bytes
//! (BitTorrent's layout, docs/design.md section 4). Hand-written because the wire layout is the point:
//! a general bitset crate would still need this conversion.

/// Which parts are held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitfield {
    bytes: Vec<u8>,
    len: u32,
    count: u32,
}

impl Bitfield {
    /// `len` parts, none held.
    pub fn new(len: u32) -> Self {
        Self {
            bytes: vec![0; (len as usize).div_ceil(8)],
            len,
            count: 0,
        }
    }

    /// Parses a peer's bitfield: exactly `ceil(len/8)` bytes, spare bits zero.
    pub fn from_bytes(len: u32, bytes: &[u8]) -> Option<Self> {
        if bytes.len() != (len as usize).div_ceil(8) {
            return None;
        }
        let spare = (bytes.len() * 8) as u32 - len;
        if spare > 0 {
            let last = bytes[bytes.len() - 1];
            if last & ((1u8 << spare) - 1) != 0 {
                return None;
            }
        }
        let count = bytes.iter().map(|b| b.count_ones()).sum();
        Some(Self {
            bytes: bytes.to_vec(),
            len,
            count,
        })
    }

    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Parts held.
    pub fn count(&self) -> u32 {
        self.count
    }

    pub fn is_complete(&self) -> bool {
        self.count == self.len
    }

    pub fn get(&self, part: u32) -> bool {
        part < self.len && self.bytes[(part / 8) as usize] & (0x80 >> (part % 8)) != 0
    }

    /// Marks `part` held; false if it already was (or is out of range).
    pub fn set(&mut self, part: u32) -> bool {
        if part >= self.len || self.get(part) {
            return false;
        }
        self.bytes[(part / 8) as usize] |= 0x80 >> (part % 8);
        self.count += 1;
        true
    }

    /// Marks `part` not held.
    pub fn clear(&mut self, part: u32) {
        if self.get(part) {
            self.bytes[(part / 8) as usize] &= !(0x80 >> (part % 8));
            self.count -= 1;
        }
    }

    /// Whether every part in `first..first+count` is held.
    pub fn has_all(&self, first: u32, count: u32) -> bool {
        (first..first.saturating_add(count)).all(|p| self.get(p))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Held parts, in order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len).filter(|&p| self.get(p))
    }

    /// The parts either holds (`None`: different lengths).
    pub fn union(&self, other: &Bitfield) -> Option<Bitfield> {
        if self.len != other.len {
            return None;
        }
        let bytes: Vec<u8> = self
            .bytes
            .iter()
            .zip(&other.bytes)
            .map(|(a, b)| a | b)
            .collect();
        Bitfield::from_bytes(self.len, &bytes)
    }

    /// Whether this holds a part `other` does not (`true` for different lengths).
    pub fn has_any_beyond(&self, other: &Bitfield) -> bool {
        self.len != other.len
            || self
                .bytes
                .iter()
                .zip(&other.bytes)
                .any(|(a, b)| a & !b != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_and_beyond() {
        let mut a = Bitfield::new(10);
        let mut b = Bitfield::new(10);
        a.set(1);
        b.set(9);
        let both = a.union(&b).expect("same length");
        assert_eq!(both.iter().collect::<Vec<_>>(), [1, 9]);
        assert_eq!(both.count(), 2);
        assert!(both.has_any_beyond(&a));
        assert!(!a.has_any_beyond(&both));
        assert!(a.union(&Bitfield::new(11)).is_none());
        assert!(a.has_any_beyond(&Bitfield::new(11)));
    }

    #[test]
    fn layout_is_msb_first() {
        let mut b = Bitfield::new(10);
        assert!(b.set(0));
        assert!(b.set(9));
        assert!(!b.set(9));
        assert!(!b.set(10));
        assert_eq!(b.as_bytes(), &[0x80, 0x40]);
        assert_eq!(b.count(), 2);
        assert_eq!(Bitfield::from_bytes(10, &[0x80, 0x40]), Some(b.clone()));
        assert_eq!(
            Bitfield::from_bytes(10, &[0x80, 0x60]),
            None,
            "spare bit set"
        );
        assert_eq!(Bitfield::from_bytes(10, &[0x80]), None, "short");
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![0, 9]);
        b.clear(0);
        assert_eq!(b.count(), 1);
        assert!(b.has_all(9, 1));
        assert!(!b.has_all(8, 2));
        assert_eq!(
            Bitfield::from_bytes(0, &[]).map(|b| b.is_complete()),
            Some(true)
        );
    }
}
