//! A picture of a run: bytes from the origin and from peers each second, listeners present,
//! and the silence they heard (`alluvium-sim --plot run.svg`).

use std::path::Path;

use plotters::prelude::*;

use crate::Outcome;

#[derive(Debug, thiserror::Error)]
#[error("drawing {path}: {message}")]
pub struct PlotError {
    path: String,
    message: String,
}

/// Draws `o` as an SVG at `path`, titled `title`.
pub fn plot(o: &Outcome, title: &str, path: &Path) -> Result<(), PlotError> {
    draw(o, title, path).map_err(|e| PlotError {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

type Failed = Box<dyn std::error::Error>;

fn draw(o: &Outcome, title: &str, path: &Path) -> Result<(), Failed> {
    let root = SVGBackend::new(path, (1200, 760)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    let (top, bottom) = root.split_vertically(440);
    let secs = o.seconds.len().max(1) as f64;
    let kb = |b: f64| b / 1000.0;
    let top_max = o
        .seconds
        .iter()
        .map(|s| kb(s.origin_bytes).max(kb(s.peer_bytes)))
        .fold(1.0f64, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&top)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .right_y_label_area_size(56)
        .build_cartesian_2d(0f64..secs, 0f64..top_max)?
        .set_secondary_coord(0f64..secs, 0f64..(o.startup_ms.len() as f64 * 1.1).max(1.0));
    chart
        .configure_mesh()
        .x_desc("seconds from the first arrival")
        .y_desc("kB/s")
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc("listeners")
        .draw()?;
    let peer = RGBColor(46, 125, 50);
    let origin = RGBColor(198, 40, 40);
    let people = RGBColor(21, 101, 192);
    chart
        .draw_series(AreaSeries::new(
            o.seconds
                .iter()
                .enumerate()
                .map(|(t, s)| (t as f64, kb(s.peer_bytes))),
            0.0,
            peer.mix(0.25),
        ))?
        .label("from peers")
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], peer.filled()));
    chart
        .draw_series(LineSeries::new(
            o.seconds
                .iter()
                .enumerate()
                .map(|(t, s)| (t as f64, kb(s.origin_bytes))),
            origin.stroke_width(2),
        ))?
        .label("from the origin")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], origin.stroke_width(2)));
    chart
        .draw_secondary_series(LineSeries::new(
            o.seconds
                .iter()
                .enumerate()
                .map(|(t, s)| (t as f64, f64::from(s.listeners))),
            people.stroke_width(2),
        ))?
        .label("listeners (right axis)")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], people.stroke_width(2)));
    let change = BLACK.mix(0.5);
    chart
        .draw_series(
            o.entry_changes_s
                .iter()
                .map(|&t| PathElement::new(vec![(t, 0.0), (t, top_max)], change.stroke_width(1))),
        )?
        .label("entry changes (heard)")
        .legend(move |(x, y)| PathElement::new(vec![(x + 9, y - 6), (x + 9, y + 6)], change));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;

    // Silence: seconds of it heard each second, all listeners together.
    let silence_max = o
        .seconds
        .iter()
        .map(|s| s.silence_ms / 1000.0)
        .fold(1.0f64, f64::max)
        * 1.1;
    let mut below = ChartBuilder::on(&bottom)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .right_y_label_area_size(56)
        .caption(
            format!(
                "silence: median {:.1} s, max {:.1} s per listener, {:.0} s per listener-hour",
                o.silence_quantile(0.5) as f64 / 1000.0,
                o.silence_quantile(1.0) as f64 / 1000.0,
                o.silence_per_hour_s()
            ),
            ("sans-serif", 16),
        )
        .build_cartesian_2d(0f64..secs, 0f64..silence_max)?;
    below
        .configure_mesh()
        .x_desc("seconds from the first arrival")
        .y_desc("silent listener-s per s")
        .draw()?;
    below.draw_series(
        o.entry_changes_s
            .iter()
            .map(|&t| PathElement::new(vec![(t, 0.0), (t, silence_max)], change.stroke_width(1))),
    )?;
    let quiet = RGBColor(106, 27, 154);
    below.draw_series(o.seconds.iter().enumerate().map(|(t, s)| {
        let x = t as f64;
        Rectangle::new([(x, 0.0), (x + 1.0, s.silence_ms / 1000.0)], quiet.filled())
    }))?;
    root.present()?;
    Ok(())
}
