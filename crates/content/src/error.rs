use thiserror::Error;

/// What went wrong building or checking content.
#[derive(Debug, Error)]
pub enum ContentError {
    /// The bytes of a part do not hash to what the tree says: corrupt or substituted data.
    #[error("part {part} failed verification")]
    PartMismatch { part: u64 },
    /// An outboard that does not belong to the root it came with.
    #[error("the hash tree does not match root {root}")]
    OutboardMismatch { root: String },
    /// An outboard of the wrong length for the content's size.
    #[error("hash tree is {got} bytes, a {size}-byte file needs {expected}")]
    OutboardSize { size: u64, expected: u64, got: u64 },
    /// Bytes that do not line up with parts: a range must start on a part boundary and hold
    /// whole parts (the last part of the file may be short).
    #[error("{len} bytes at part {first_part} are not whole parts of a {size}-byte file")]
    NotWholeParts {
        first_part: u64,
        len: u64,
        size: u64,
    },
    /// The source ended before the size it announced.
    #[error("source ended after {got} of {expected} bytes")]
    Truncated { expected: u64, got: u64 },
    /// The source gave more bytes than it announced.
    #[error("source sent more than the {expected} bytes it announced")]
    TooLong { expected: u64 },
    /// Reading the source failed.
    #[error("reading the content")]
    Io(#[source] std::io::Error),
    /// A string that is not a 64-digit hex BLAKE3 hash.
    #[error("not a BLAKE3 hash (64 hex digits): {0:?}")]
    BadHash(String),
}
