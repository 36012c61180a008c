//! Tests of the picker, driven with explicit instants and a seeded rng.

#![allow(clippy::unwrap_used)]

mod asking;
mod faults;
mod ownership;
mod timeout;

use super::*;
use rand::SeedableRng;

fn rng() -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(7)
}

fn peer(i: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, i], 7001))
}

/// A picker's time 0 in Unix ms, for tests of ownership by start time.
const EPOCH: u64 = 1_000_000_000;
/// Parts due one a second from time 0.
const ONE_A_SECOND: Deadlines = Deadlines::Linear {
    start_ms: 0,
    per_part_ms: 1000.0,
};

/// Member `i` of a swarm whose members started a second apart from `EPOCH`: its hash
/// and start.
fn member(i: u64) -> (u64, u64) {
    (member_hash(&format!("m{i}")), EPOCH + 1000 * i)
}

fn full(n: u32) -> Bitfield {
    let mut b = Bitfield::new(n);
    for p in 0..n {
        b.set(p);
    }
    b
}
