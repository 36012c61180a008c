//! `alluvium listen`'s core: follow a station's playlist and keep what is on air, and what
//! comes next, downloading by swarming, with each part's deadline its play time.
//!
//! Actors: the station loop owns the playlist and the clock offset. It re-reads the playlist
//! (conditional GET) as often as the playlist's `sy:` hint says, and always before its known
//! schedule runs out, keeping the last good one when a read fails. For each entry on air or
//! next it spawns an entry task: resolve at the gateway (refusing a root other than the one
//! the playlist pins), announce, download with deadlines, until the slot ends. Contents stay
//! in the node's store and keep being announced a while after they aired, for later peers.
//!
//! - [`run`] follows the station until cancelled; [`StationState`] is what the stream reads
//!   of it (the playlist, the station's clock, each entry's root).
//! - [`ClockOffset`]: the station's clock from the web server's `Date` headers.

mod clock;
mod follow;

pub use clock::ClockOffset;
pub use follow::{run, StationConfig, StationError, StationState};
