//! What a listener needs of the gateway, without the gateway: its JSON bodies ([`wire`]) and a
//! typed client of its HTTP API (docs/design.md section 4). The gateway's service uses the same
//! bodies, so the two cannot drift apart.

mod client;
pub mod wire;

pub use client::{Client, ClientError, ContentStatus};
