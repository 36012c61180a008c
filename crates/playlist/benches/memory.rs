//! The most memory parsing takes, against the document's size: `cargo bench -p
//! alluvium-playlist --bench memory`. The peak of bytes live while parsing, the document
//! itself not included.

use alluvium_playlist::{parse, write};
use common::playlist;

mod common;

// dhat counts every allocation (bytes live at the peak), so the figure is the same on every
// run; written for the job, and it keeps unsafe code out of this workspace.
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() {
    for entries in [1_000, 20_000] {
        let xml = write(&playlist(entries));
        for (name, doc) in [("lines", xml.clone()), ("one line", xml.replace('\n', " "))] {
            // Counts only what is allocated while it lives.
            let profiler = dhat::Profiler::builder().testing().build();
            let parsed = parse(doc.as_bytes()).map(|p| p.playlist.entries.len());
            let peak = dhat::HeapStats::get().max_bytes;
            drop(profiler);
            println!(
                "parse {entries} entries ({name}): {:.1} MB document, peak {:.1} MB more ({:.1}x), {} entries read",
                doc.len() as f64 / 1e6,
                peak as f64 / 1e6,
                peak as f64 / doc.len() as f64,
                parsed.unwrap_or(0)
            );
        }
    }
}
