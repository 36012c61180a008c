//! Verified parts, and only verified parts: in memory for what is about to play, in a bounded
//! disk cache for the rest.
//!
//! Every part enters through [`Content::insert`], which checks it against the hash tree first,
//! and leaves through [`Content::read`], which checks disk data again (a disk may rot or be
//! written by someone else). A part is written to its place in `<cache>/<root>.data`; after a
//! restart the file is verified part by part, so a write torn by a crash is just a part not
//! held. When the disk fails (full, read-only, gone) the error is logged once, the cache is
//! switched off for that content, and parts live on in memory within the memory budget.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use alluvium_content::{part_count, part_range, ContentError, Hash, Outboard};
use bytes::Bytes;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::bitfield::Bitfield;
use crate::picker::AudioMap;

/// Parts of one content kept in memory (the stream reads near the play position; the rest is
/// on disk). 4 MiB is about 4 minutes at 128 kbit/s.
pub const DEFAULT_MEMORY_PER_CONTENT: usize = 4 << 20;

/// What the store could not do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("part {part} failed verification")]
    Invalid {
        part: u32,
        #[source]
        source: ContentError,
    },
    #[error("part {0} is not held")]
    NotHeld(u32),
    #[error("reading part {part} from the cache")]
    Read {
        part: u32,
        #[source]
        source: std::io::Error,
    },
}

struct State {
    have: Bitfield,
    /// Recently stored or read parts, oldest insertion first out.
    mem: BTreeMap<u32, Bytes>,
    mem_order: std::collections::VecDeque<u32>,
    mem_bytes: usize,
    disk: Option<File>,
    /// Parts a reader waits for out of play order (a file's head), not yet held.
    wanted: Vec<u32>,
    /// Where the media's play time falls in its bytes, once a reader has found it.
    audio: Option<AudioMap>,
}

/// One content this node holds parts of.
pub struct Content {
    root: Hash,
    tree: Outboard,
    state: Mutex<State>,
    version: watch::Sender<u64>,
    /// Grows whenever a reader wants a part out of play order ([`Content::want`]) or says
    /// where the audio lies ([`Content::set_audio`]).
    wants: watch::Sender<u64>,
    mem_limit: usize,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Content").field("root", &self.root).finish()
    }
}

impl Content {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn root(&self) -> Hash {
        self.root
    }

    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    pub fn parts(&self) -> u32 {
        part_count(self.size()) as u32
    }

    pub fn tree(&self) -> &Outboard {
        &self.tree
    }

    /// A copy of the bitfield, and its version.
    pub fn have(&self) -> (Bitfield, u64) {
        let s = self.lock();
        (s.have.clone(), *self.version.borrow())
    }

    pub fn is_complete(&self) -> bool {
        self.lock().have.is_complete()
    }

    /// Whether a part outside `known` is held.
    pub fn holds_beyond(&self, known: &Bitfield) -> bool {
        self.lock().have.has_any_beyond(known)
    }

    /// A reader needs `part` now, whatever its play time (a file's head, which says where the
    /// audio lies): downloads ask it first, as they do the first part. Forgotten once held.
    pub fn want(&self, part: u32) {
        let mut s = self.lock();
        if part < s.have.len() && !s.have.get(part) && !s.wanted.contains(&part) {
            s.wanted.push(part);
            drop(s);
            self.wants.send_modify(|n| *n += 1);
        }
    }

    /// A reader found where the media's play time falls in its bytes (between its tags, by
    /// its seek table): downloads time their parts by it (`Deadlines::Audio`).
    pub fn set_audio(&self, audio: AudioMap) {
        let mut s = self.lock();
        if s.audio.as_ref() != Some(&audio) {
            s.audio = Some(audio);
            drop(s);
            self.wants.send_modify(|n| *n += 1);
        }
    }

    /// Where a reader found the audio ([`Content::set_audio`]), if one has.
    pub fn audio(&self) -> Option<AudioMap> {
        self.lock().audio.clone()
    }

    /// Watches what readers want ([`Content::want`]): it changes when they want more, or
    /// say where the audio lies.
    pub fn subscribe_wants(&self) -> watch::Receiver<u64> {
        self.wants.subscribe()
    }

    /// Parts wanted by [`Content::want`] and not held yet.
    pub fn wanted(&self) -> Vec<u32> {
        let mut s = self.lock();
        let State { have, wanted, .. } = &mut *s;
        wanted.retain(|&p| !have.get(p));
        wanted.clone()
    }

    /// Watches the have version (it grows whenever a part is gained).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Checks `bytes` (whole parts from `first`) and keeps them. Parts already held are left
    /// as they are. Returns how many parts were new.
    pub fn insert(&self, first: u32, bytes: &Bytes) -> Result<u32, StoreError> {
        self.tree
            .verify_parts(u64::from(first), bytes)
            .map_err(|source| StoreError::Invalid {
                part: match source {
                    ContentError::PartMismatch { part } => part as u32,
                    _ => first,
                },
                source,
            })?;
        let size = self.size();
        let mut s = self.lock();
        let mut new = 0;
        let mut offset = 0usize;
        let mut part = first;
        while offset < bytes.len() {
            let range = part_range(u64::from(part), size);
            let len = (range.end - range.start) as usize;
            let data = bytes.slice(offset..offset + len);
            offset += len;
            if !s.have.get(part) {
                if let Some(file) = &s.disk {
                    if let Err(e) = file.write_all_at(&data, range.start) {
                        error!(
                            root = %self.root,
                            path = %self.path.as_deref().map(Path::display).map(|d| d.to_string()).unwrap_or_default(),
                            "disk cache write failed, keeping parts in memory only: {e}"
                        );
                        s.disk = None;
                    }
                }
                let on_disk = s.disk.is_some();
                self.remember(&mut s, part, data, on_disk);
                if s.have.get(part) || on_disk || s.mem.contains_key(&part) {
                    s.have.set(part);
                    new += 1;
                }
            }
            part += 1;
        }
        drop(s);
        if new > 0 {
            self.version.send_modify(|v| *v += 1);
        }
        Ok(new)
    }

    /// Keeps `data` in memory, evicting the oldest parts past the budget; without a disk an
    /// evicted part is no longer held.
    fn remember(&self, s: &mut State, part: u32, data: Bytes, on_disk: bool) {
        if s.mem.insert(part, data.clone()).is_none() {
            s.mem_order.push_back(part);
            s.mem_bytes += data.len();
        }
        while s.mem_bytes > self.mem_limit && s.mem_order.len() > 1 {
            let Some(old) = s.mem_order.pop_front() else {
                break;
            };
            if let Some(d) = s.mem.remove(&old) {
                s.mem_bytes -= d.len();
                if !on_disk && s.disk.is_none() {
                    s.have.clear(old);
                }
            }
        }
    }

    /// Verified bytes of parts `first..first+count`.
    pub fn read(&self, first: u32, count: u32) -> Result<Bytes, StoreError> {
        let size = self.size();
        let mut out = Vec::new();
        for part in first..first.saturating_add(count) {
            out.extend_from_slice(&self.read_part(part, size)?);
        }
        Ok(Bytes::from(out))
    }

    fn read_part(&self, part: u32, size: u64) -> Result<Bytes, StoreError> {
        let s = self.lock();
        if !s.have.get(part) {
            return Err(StoreError::NotHeld(part));
        }
        if let Some(b) = s.mem.get(&part) {
            return Ok(b.clone());
        }
        let Some(file) = s.disk.as_ref().and_then(|f| f.try_clone().ok()) else {
            return Err(StoreError::NotHeld(part));
        };
        drop(s);
        let range = part_range(u64::from(part), size);
        let mut buf = vec![0u8; (range.end - range.start) as usize];
        file.read_exact_at(&mut buf, range.start)
            .map_err(|source| StoreError::Read { part, source })?;
        let bytes = Bytes::from(buf);
        if let Err(source) = self.tree.verify_parts(u64::from(part), &bytes) {
            // The disk changed under us: the part is no longer held.
            warn!(root = %self.root, part, "cached part failed verification; dropped");
            self.lock().have.clear(part);
            return Err(StoreError::Invalid { part, source });
        }
        Ok(bytes)
    }

    /// The whole content, when complete.
    pub fn read_all(&self) -> Result<Bytes, StoreError> {
        self.read(0, self.parts())
    }
}

/// All contents this node holds, and the disk cache under them.
pub struct Store {
    dir: Option<PathBuf>,
    limit: u64,
    mem_limit: usize,
    contents: Mutex<HashMap<Hash, Arc<Content>>>,
}

impl Store {
    /// A store caching on disk in `dir` (created if needed) up to `limit` bytes, or in memory
    /// only. A `dir` that cannot be used is logged and the store runs from memory.
    pub fn new(dir: Option<PathBuf>, limit: u64, mem_limit: usize) -> Self {
        let dir = dir.and_then(|d| match std::fs::create_dir_all(&d) {
            Ok(()) => Some(d),
            Err(e) => {
                error!(path = %d.display(), "disk cache unusable, keeping parts in memory only: {e}");
                None
            }
        });
        Self {
            dir,
            limit,
            mem_limit,
            contents: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Hash, Arc<Content>>> {
        self.contents.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The content named by `tree`'s root, opened (and its cached parts verified) if new.
    pub fn open(&self, tree: Outboard) -> Arc<Content> {
        let root: Hash = tree.root().into();
        if let Some(c) = self.lock().get(&root) {
            return c.clone();
        }
        let parts = part_count(tree.size()) as u32;
        let mut have = Bitfield::new(parts);
        let path = self.dir.as_ref().map(|d| d.join(format!("{root}.data")));
        let disk = path.as_ref().and_then(|p| {
            self.make_room(tree.size(), &root);
            let file = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(p)
                .and_then(|f| {
                    if f.metadata()?.len() != tree.size() {
                        f.set_len(tree.size())?;
                    }
                    Ok(f)
                });
            match file {
                Ok(f) => Some(f),
                Err(e) => {
                    error!(path = %p.display(), "disk cache unusable, keeping parts in memory only: {e}");
                    None
                }
            }
        });
        if let Some(f) = &disk {
            // Only what verifies counts as held: a crash mid-write leaves a bad part, not a
            // bad stream.
            let mut buf = vec![0u8; alluvium_content::PART_SIZE as usize];
            for part in 0..parts {
                let r = part_range(u64::from(part), tree.size());
                let b = &mut buf[..(r.end - r.start) as usize];
                if f.read_exact_at(b, r.start).is_ok()
                    && tree.verify_parts(u64::from(part), b).is_ok()
                {
                    have.set(part);
                }
            }
            if have.count() > 0 {
                info!(%root, parts = have.count(), of = parts, "found verified parts in the cache");
            }
        }
        let content = Arc::new(Content {
            root,
            tree,
            state: Mutex::new(State {
                have,
                mem: BTreeMap::new(),
                mem_order: Default::default(),
                mem_bytes: 0,
                disk,
                wanted: Vec::new(),
                audio: None,
            }),
            version: watch::Sender::new(1),
            wants: watch::Sender::new(0),
            mem_limit: self.mem_limit,
            path,
        });
        self.lock().entry(root).or_insert(content).clone()
    }

    /// A content already open.
    pub fn get(&self, root: &Hash) -> Option<Arc<Content>> {
        self.lock().get(root).cloned()
    }

    /// The roots of every content open.
    pub fn known_roots(&self) -> Vec<Hash> {
        self.lock().keys().copied().collect()
    }

    /// Deletes cached files of contents not open here, least recently changed first, until
    /// `need` more bytes fit under the limit.
    fn make_room(&self, need: u64, keep: &Hash) {
        let Some(dir) = &self.dir else { return };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut open: Vec<String> = self.lock().keys().map(|h| format!("{h}.data")).collect();
        open.push(format!("{keep}.data"));
        let mut used = 0u64;
        let mut removable = Vec::new();
        for e in entries.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().to_string();
            let Ok(m) = e.metadata() else { continue };
            if !name.ends_with(".data") {
                continue;
            }
            used += m.len();
            if !open.contains(&name) {
                let modified = m.modified().unwrap_or(std::time::UNIX_EPOCH);
                removable.push((modified, m.len(), e.path()));
            }
        }
        removable.sort();
        for (_, len, path) in removable {
            if used + need <= self.limit {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                info!(path = %path.display(), "cache full: removed an old content");
                used = used.saturating_sub(len);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn content(size: usize) -> (Vec<u8>, Outboard) {
        let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        let tree = Outboard::compute(&data[..], size as u64, |_| {}).unwrap();
        (data, tree)
    }

    #[test]
    fn where_the_audio_lies_wakes_the_download_once() {
        let (_, tree) = content(50_000);
        let c = Store::new(None, u64::MAX, usize::MAX).open(tree);
        let mut wants = c.subscribe_wants();
        wants.mark_unchanged();
        assert_eq!(c.audio(), None);
        c.set_audio(AudioMap::even(417..49_000));
        assert!(wants.has_changed().unwrap_or(false));
        wants.mark_unchanged();
        assert_eq!(c.audio(), Some(AudioMap::even(417..49_000)));
        c.set_audio(AudioMap::even(417..49_000));
        assert!(!wants.has_changed().unwrap_or(true), "nothing new");
    }

    #[test]
    fn only_verified_parts_enter_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (data, tree) = content(100_000);
        let store = Store::new(Some(dir.path().to_path_buf()), 1 << 30, 1 << 20);
        let c = store.open(tree.clone());
        assert_eq!(c.parts(), 7);
        let part1 = Bytes::copy_from_slice(&data[16384..32768]);
        assert_eq!(c.insert(1, &part1).unwrap(), 1);
        let mut bad = part1.to_vec();
        bad[5] ^= 1;
        assert!(matches!(
            c.insert(2, &Bytes::from(bad)),
            Err(StoreError::Invalid { part: 2, .. })
        ));
        assert_eq!(c.read(1, 1).unwrap(), part1);
        assert!(matches!(c.read(2, 1), Err(StoreError::NotHeld(2))));

        // A torn write of part 3 on disk, then a restart: only part 1 is held.
        let file = dir.path().join(format!("{}.data", c.root()));
        let f = File::options().write(true).open(&file).unwrap();
        f.write_all_at(&data[3 * 16384..3 * 16384 + 100], 3 * 16384)
            .unwrap();
        drop(c);
        drop(store);
        let store = Store::new(Some(dir.path().to_path_buf()), 1 << 30, 1 << 20);
        let c = store.open(tree);
        assert_eq!(c.have().0.iter().collect::<Vec<_>>(), vec![1]);
        assert_eq!(c.read(1, 1).unwrap(), part1);
    }

    #[test]
    fn a_failing_disk_leaves_memory_working() {
        let dir = tempfile::tempdir().unwrap();
        let (data, tree) = content(50_000);
        let root: Hash = tree.root().into();
        std::os::unix::fs::symlink("/dev/full", dir.path().join(format!("{root}.data"))).unwrap();
        let store = Store::new(Some(dir.path().to_path_buf()), 1 << 30, 1 << 20);
        let c = store.open(tree);
        let all = Bytes::from(data.clone());
        c.insert(0, &all).unwrap();
        assert!(c.is_complete());
        assert_eq!(c.read_all().unwrap(), all);
    }
}
