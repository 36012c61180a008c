//! The swarming core: a listener fetches content from many peers at once and from the
//! origin, verifies every part against the hash tree before it is kept, played or passed on,
//! and serves what it holds.
//!
//! - [`picker`]: the deterministic scheduling core (which part of whom, deadlines, re-issue,
//!   scoring, bans). No I/O, no clock.
//! - [`store`]: verified parts in memory and in a bounded disk cache.
//! - [`server`]: the peer protocol (`/v1/blob/...`, docs/design.md section 4), with its limits.
//! - [`node`]: one listener's node: store + server + known peers + upload budget + metrics.
//! - [`uplink`]: the upload paced at its rate, the soonest-due answer first.
//! - [`download`]: the async shell that runs a download against a node.
//! - [`station`]: follows a playlist and keeps what is on air and next downloading, with each
//!   part due at its play time ([`clock`]: the station's clock from `Date` headers).

mod answers;
pub mod bitfield;
pub mod clock;
pub mod download;
mod metrics;
pub mod node;
pub mod picker;
pub mod proto;
pub mod server;
pub mod station;
pub mod store;
pub mod uplink;

pub use bitfield::Bitfield;
pub use download::{download, resolve, spawn_announcer, Announcing, DownloadConfig, SwarmError};
pub use metrics::Metrics;
pub use node::{Node, NodeConfig, UploadLimit};
pub use picker::{Deadlines, PickerConfig};
pub use store::{Content, Store};

/// An error and its causes on one line (`a: b: c`), for logs.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s = s.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        source = source.and_then(std::error::Error::source);
    }
    text
}
