//! What a player heard as silence: counted in the metrics and the broadcaster's report, and
//! each gap logged once when it ends.

use chrono::{DateTime, TimeDelta, Utc};

use crate::station::Station;

/// Counts `d` of silence sent from `from` on the schedule, in `title`: in the metrics, in
/// what the broadcaster's report is told, and in the log when the gap ends (`gap`).
pub(crate) fn count_silence(
    station: &Station,
    gap: &mut Gap,
    title: &str,
    from: DateTime<Utc>,
    d: TimeDelta,
) {
    gap.silent(title, from, d);
    let seconds = d.num_microseconds().unwrap_or(0) as f64 / 1e6;
    station.node.metrics.stall_seconds.inc_by(seconds);
    station
        .node
        .report
        .silence(from.timestamp_millis(), seconds);
}

/// The silence a player is hearing now, told once when it ends (or the player goes): in
/// which entry and where on the schedule it began, and how long it lasted, so a log says
/// when listeners heard nothing.
#[derive(Default)]
pub(crate) struct Gap(Option<(String, DateTime<Utc>, TimeDelta)>);

impl Gap {
    pub(crate) fn silent(&mut self, title: &str, at: DateTime<Utc>, d: TimeDelta) {
        let (_, _, total) = self
            .0
            .get_or_insert_with(|| (title.to_owned(), at, TimeDelta::zero()));
        *total += d;
    }

    pub(crate) fn ended(&mut self) {
        if let Some((title, from, d)) = self.0.take() {
            let seconds = d.num_milliseconds() as f64 / 1e3;
            tracing::info!(%title, scheduled = %from.format("%H:%M:%S%.3f"), seconds,
                "played silence: the data was not here in time");
        }
    }
}

impl Drop for Gap {
    fn drop(&mut self) {
        self.ended();
    }
}
