//! What every player of one listener shares: the node, the station's state, the stop signal,
//! and a TV station's HLS playlist.

use std::sync::Arc;
use std::time::Duration;

use alluvium_station::StationState;
use alluvium_swarm::Node;

use crate::track::Kind;

/// What every client shares.
pub struct Station {
    pub node: Arc<Node>,
    pub state: Arc<StationState>,
    /// Cancelled when the program stops: every player's stream ends.
    pub stop: tokio_util::sync::CancellationToken,
    /// A TV station's HLS playlist for browsers.
    pub(crate) hls: crate::hls::Hls,
}

impl Station {
    pub fn new(
        node: Arc<Node>,
        state: Arc<StationState>,
        stop: tokio_util::sync::CancellationToken,
    ) -> Self {
        Self {
            node,
            state,
            stop,
            hls: crate::hls::Hls::default(),
        }
    }

    /// The stream's format, from the playlist (MP3 until one is read).
    pub fn kind(&self) -> Kind {
        self.state
            .playlist()
            .map(|p| Kind::of_playlist(&p.playlist))
            .unwrap_or(Kind::Mpeg)
    }

    /// The stream's format once the playlist is read, waiting up to `wait` for it (a player
    /// that connects as the listener starts must not be served the wrong kind of stream).
    pub async fn kind_when_known(&self, wait: Duration) -> Kind {
        let until = tokio::time::Instant::now() + wait;
        while self.state.playlist().is_none() && tokio::time::Instant::now() < until {
            tokio::select! {
                _ = self.stop.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        self.kind()
    }
}
