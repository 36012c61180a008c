//! Building an outboard from a stream, and checking parts against it.

use std::io::{self, Read};
use std::ops::Range;

use bao_tree::io::outboard::PreOrderMemOutboard;
use bao_tree::io::sync::{valid_outboard_ranges, valid_ranges, ReadAt};
use bao_tree::{BaoTree, BlockSize, ChunkNum, ChunkRanges};

use crate::ContentError;

/// Bytes in a part: one bao chunk group of 16 chunks of 1 KiB.
pub const PART_SIZE: u64 = 16 * 1024;

/// Chunks (bao's 1 KiB units) in a part, as a power of two.
const PART_CHUNK_LOG: u8 = 4;
const BLOCK_SIZE: BlockSize = BlockSize::from_chunk_log(PART_CHUNK_LOG);
const CHUNKS_PER_PART: u64 = 1 << PART_CHUNK_LOG;
const CHUNK_SIZE: u64 = 1024;

/// How many parts a file of `size` bytes has (none for an empty file).
pub fn part_count(size: u64) -> u64 {
    size.div_ceil(PART_SIZE)
}

/// The byte range of part `index` in a file of `size` bytes (empty past the end).
pub fn part_range(index: u64, size: u64) -> Range<u64> {
    let start = index.saturating_mul(PART_SIZE).min(size);
    let end = start.saturating_add(PART_SIZE).min(size);
    start..end
}

/// A file's root hash, size and pre-order outboard (see the crate doc for the layout).
#[derive(Clone, PartialEq, Eq)]
pub struct Outboard {
    inner: PreOrderMemOutboard<Vec<u8>>,
}

impl std::fmt::Debug for Outboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outboard")
            .field("root", &self.inner.root.to_hex())
            .field("size", &self.inner.tree.size())
            .field("bytes", &self.inner.data.len())
            .finish()
    }
}

impl Outboard {
    /// Hashes exactly `size` bytes from `source`, holding one part in memory at a time (plus
    /// the outboard itself, 64 bytes a part). `progress` is told the bytes read so far after
    /// every read. A source that ends early or runs past `size` is an error: the file changed
    /// or the announced size was wrong.
    pub fn compute(
        source: impl Read,
        size: u64,
        mut progress: impl FnMut(u64),
    ) -> Result<Self, ContentError> {
        let tree = BaoTree::new(size, BLOCK_SIZE);
        let len = usize::try_from(tree.outboard_size())
            .map_err(|_| ContentError::TooLong { expected: size })?;
        let mut inner = PreOrderMemOutboard {
            root: blake3::Hash::from([0; 32]),
            tree,
            data: vec![0u8; len],
        };
        let mut counted = Counted {
            inner: source,
            read: 0,
            progress: &mut progress,
        };
        let root = match bao_tree::io::sync::outboard(&mut counted, tree, &mut inner) {
            Ok(root) => root,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(ContentError::Truncated {
                    expected: size,
                    got: counted.read,
                })
            }
            Err(e) => return Err(ContentError::Io(e)),
        };
        let mut extra = [0u8; 1];
        loop {
            match counted.inner.read(&mut extra) {
                Ok(0) => break,
                Ok(_) => return Err(ContentError::TooLong { expected: size }),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ContentError::Io(e)),
            }
        }
        inner.root = root;
        Ok(Self { inner })
    }

    /// An outboard received from elsewhere (a gateway, a store), checked: it must have the
    /// right length for `size` and every hash in it must lead up to `root`. After this, a
    /// part that verifies is exactly the part of the file named by `root`.
    pub fn from_bytes(root: blake3::Hash, size: u64, bytes: Vec<u8>) -> Result<Self, ContentError> {
        let tree = BaoTree::new(size, BLOCK_SIZE);
        if bytes.len() as u64 != tree.outboard_size() {
            return Err(ContentError::OutboardSize {
                size,
                expected: tree.outboard_size(),
                got: bytes.len() as u64,
            });
        }
        let outboard = Self {
            inner: PreOrderMemOutboard {
                root,
                tree,
                data: bytes,
            },
        };
        // bao-tree checks every stored pair against its parent, from the root down, and
        // reports the chunk ranges whose path is intact; all of them must be.
        let all = ChunkRanges::from(ChunkNum(0)..tree.chunks());
        let mut covered = ChunkNum(0);
        for range in valid_outboard_ranges(&outboard.inner, &all) {
            let range = range.map_err(ContentError::Io)?;
            if range.start != covered {
                break;
            }
            covered = range.end;
        }
        if covered < tree.chunks() {
            return Err(ContentError::OutboardMismatch {
                root: root.to_hex().to_string(),
            });
        }
        Ok(outboard)
    }

    /// The BLAKE3 hash of the whole file.
    pub fn root(&self) -> blake3::Hash {
        self.inner.root
    }

    /// The file's size in bytes.
    pub fn size(&self) -> u64 {
        self.inner.tree.size()
    }

    /// How many parts the file has.
    pub fn parts(&self) -> u64 {
        part_count(self.size())
    }

    /// The outboard bytes, as served to listeners.
    pub fn as_bytes(&self) -> &[u8] {
        &self.inner.data
    }

    /// Checks `bytes`, which must be whole consecutive parts starting at part `first_part`
    /// (only the file's last part may be short). The first part that fails is named.
    pub fn verify_parts(&self, first_part: u64, bytes: &[u8]) -> Result<(), ContentError> {
        let size = self.size();
        let start = first_part.saturating_mul(PART_SIZE);
        let len = bytes.len() as u64;
        let end = start.saturating_add(len);
        let whole = start < size && end <= size && len > 0 && (len % PART_SIZE == 0 || end == size);
        if !whole {
            // Nothing to check in an empty file; anything else is misaligned.
            if size == 0 && len == 0 && first_part == 0 {
                return Ok(());
            }
            return Err(ContentError::NotWholeParts {
                first_part,
                len,
                size,
            });
        }
        let first_chunk = start / CHUNK_SIZE;
        let end_chunk = end.div_ceil(CHUNK_SIZE);
        let wanted = ChunkRanges::from(ChunkNum(first_chunk)..ChunkNum(end_chunk));
        let data = At { start, bytes };
        let mut covered = first_chunk;
        for range in valid_ranges(&self.inner, data, &wanted) {
            let range = match range {
                Ok(r) => r,
                // A read outside the bytes given would be a bug in the ranges above; treat
                // the part as unverified rather than trusting it.
                Err(_) => break,
            };
            if range.start.0 != covered {
                break;
            }
            covered = range.end.0;
        }
        if covered >= end_chunk {
            Ok(())
        } else {
            Err(ContentError::PartMismatch {
                part: covered / CHUNKS_PER_PART,
            })
        }
    }
}

/// Counts what a reader gives and reports it.
struct Counted<'a, R, F> {
    inner: R,
    read: u64,
    progress: &'a mut F,
}

impl<R: Read, F: FnMut(u64)> Read for Counted<'_, R, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        (self.progress)(self.read);
        Ok(n)
    }
}

/// Received bytes placed at their offset in the file, for bao-tree's reader interface. Reads
/// outside them fail, so nothing unreceived is ever taken for data.
struct At<'a> {
    start: u64,
    bytes: &'a [u8],
}

impl ReadAt for At<'_> {
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        let outside = || io::Error::new(io::ErrorKind::InvalidInput, "read outside the part");
        let offset = pos.checked_sub(self.start).ok_or_else(outside)?;
        let offset = usize::try_from(offset).map_err(|_| outside())?;
        let available = self.bytes.get(offset..).ok_or_else(outside)?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_math() {
        assert_eq!(part_count(0), 0);
        assert_eq!(part_count(1), 1);
        assert_eq!(part_count(PART_SIZE), 1);
        assert_eq!(part_count(PART_SIZE + 1), 2);
        assert_eq!(part_range(1, PART_SIZE + 5), PART_SIZE..PART_SIZE + 5);
        assert_eq!(part_range(9, 10), 10..10);
    }

    #[test]
    fn misaligned_ranges_are_refused() {
        let data = vec![7u8; 3 * PART_SIZE as usize];
        let ob = Outboard::compute(&data[..], data.len() as u64, |_| {})
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            ob.verify_parts(0, &data[..100]),
            Err(ContentError::NotWholeParts { .. })
        ));
        assert!(matches!(
            ob.verify_parts(3, &data[..100]),
            Err(ContentError::NotWholeParts { .. })
        ));
        assert!(ob.verify_parts(1, &data[..2 * PART_SIZE as usize]).is_ok());
    }

    #[test]
    fn short_and_long_sources() {
        let data = vec![1u8; 50_000];
        assert!(matches!(
            Outboard::compute(&data[..40_000], 50_000, |_| {}),
            Err(ContentError::Truncated { got: 40_000, .. })
        ));
        assert!(matches!(
            Outboard::compute(&data[..], 40_000, |_| {}),
            Err(ContentError::TooLong { .. })
        ));
    }
}
