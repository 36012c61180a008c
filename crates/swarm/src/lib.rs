//! The swarming core: a listener fetches content from many peers at once and from the
//! origin, verifies every part against the hash tree before it is kept, played or passed on,
//! and serves what it holds. `ARCHITECTURE.md` (The swarm) maps the modules and their
//! invariants; `picker/STATE.md` gives a part's and a peer's states.
//!
//! - [`picker`]: the clock-free scheduling core of one download (which part of whom, when to
//!   give up).
//! - [`proto`]: the peer protocol (routes, headers, Range rules, the have record).
//! - [`store`]: verified parts in memory and in a bounded disk cache.
//! - [`server`]: the peer server, with its limits; [`uplink`]: the upload paced at its rate,
//!   the soonest-due answer first; [`link`]: that rate following the link (`auto`).
//! - [`node`]: one listener's node: store + server + known peers + upload budget + metrics.
//! - [`mod@download`]: the async shell that runs a download against a node.
//! - [`health`]: whether the gateway and the origin answer, said once per outage.

mod answers;
pub mod bitfield;
pub mod download;
pub mod health;
pub mod link;
mod metrics;
pub mod node;
pub mod picker;
pub mod proto;
pub mod report;
pub mod server;
pub mod store;
pub mod uplink;

pub use bitfield::Bitfield;
pub use download::{download, resolve, spawn_announcer, Announcing, DownloadConfig, SwarmError};
pub use health::{Health, Outage, Service};
pub use metrics::Metrics;
pub use node::{Node, NodeConfig, UploadLimit};
pub use picker::{Deadlines, Model, PickerConfig};
pub use store::{Content, Store};

pub use alluvium_task::error_chain;
