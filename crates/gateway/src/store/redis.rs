//! The shared store: Redis, for several gateway processes behind a load balancer
//! (docs/design.md section 7). Everything a gateway would otherwise keep to itself lives here:
//! content info and trees, the tracker's swarms, the per-address rate limit, the locks that
//! keep origin fetches and playlist reads single-flight across gateways, and the report.
//!
//! Keys (all under `alluvium:`):
//! - `tree:{ROOT}` hash `size`, `tree`: written once, never changed (immutable by root).
//! - `url:{URL}` hash `root`, `size`, `etag`, `lm`, `checked`: the URL's current version.
//! - `count:urls`, `count:trees`: how many of each were written (for `/metrics`, no scan).
//! - `lock:{NAME}`: a random token with an expiry; its holder extends it while it works.
//! - `swarm:{ROOT}:…`: one swarm (see `ANNOUNCE`), every key expiring with its last announce.
//! - `rate:{IP}`: a token bucket with an expiry.
//!
//! Each multi-step change is one server-side script, so gateways never see half of one, and
//! time in the tracker is Redis's own clock (`TIME`), so gateways' clocks need not agree.

use std::net::SocketAddr;
use std::time::Duration;

use alluvium_content::{ContentInfo, Hash};
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};

use super::Stored;
use crate::error::StoreError;
use crate::report::{Batch, Stored as Report, Sums};
use crate::wire::{Event, Have, PeerInfo};

/// How long a command may take before the store counts as unreachable: requests fail fast
/// (a listener asks again) rather than pile up behind a dead Redis.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const PREFIX: &str = "alluvium:";

/// A connection to the shared store. Cheap to clone (one multiplexed connection, re-made
/// after Redis restarts).
#[derive(Clone)]
pub(crate) struct Redis {
    conn: ConnectionManager,
}

/// A station's report keys: `alluvium:report:{HASH}:PART`, the hash of its playlist URL
/// keeping keys short whatever the URL.
fn report_key(station: &str) -> impl Fn(&str) -> String {
    let id = blake3::hash(station.as_bytes()).to_hex()[..32].to_string();
    move |part: &str| format!("{PREFIX}report:{id}:{part}")
}

/// How long a playlist's copy is kept after its last read, for conditional reads.
const PLAYLIST_KEPT_S: i64 = 3600;

/// A playlist as kept in the shared store: the body and its tag, the origin's validators.
#[derive(Debug, Clone)]
pub(crate) struct SharedPlaylist {
    pub(crate) body: Vec<u8>,
    pub(crate) etag: String,
    pub(crate) origin_etag: Option<String>,
    pub(crate) origin_last_modified: Option<String>,
}

/// What the announce script needs besides the announce.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SwarmLimits {
    pub(crate) per_content: usize,
    pub(crate) per_host: usize,
    pub(crate) ttl_ms: u64,
    pub(crate) eldest: usize,
}

fn key(parts: &[&str]) -> String {
    let mut k = String::from(PREFIX);
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(':');
        }
        k.push_str(p);
    }
    k
}

impl Redis {
    /// Connects lazily to `redis://HOST:PORT[/DB]`: a gateway starts (and answers `503`) while
    /// Redis is down, and carries on when it comes back.
    pub(crate) fn open(spec: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(spec).map_err(|e| StoreError::BadSpec {
            spec: spec.to_string(),
            reason: e.to_string(),
        })?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(|e| {
            StoreError::BadSpec {
                spec: spec.to_string(),
                reason: e.to_string(),
            }
        })?;
        Ok(Self { conn })
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Whether Redis answers.
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        let _: String = redis::cmd("PING").query_async(&mut self.conn()).await?;
        Ok(())
    }

    pub(crate) async fn get(&self, url: &str) -> Result<Option<Stored>, StoreError> {
        let fields: Vec<Option<String>> = self
            .conn()
            .hmget(
                key(&["url", url]),
                &["root", "size", "etag", "lm", "checked"],
            )
            .await?;
        let damaged = || StoreError::Damaged(url.to_string());
        let [root, size, etag, lm, checked] =
            <[Option<String>; 5]>::try_from(fields).map_err(|_| damaged())?;
        let (Some(root), Some(size), Some(checked)) = (root, size, checked) else {
            return Ok(None);
        };
        let root: Hash = root.parse().map_err(|_| damaged())?;
        let size: u64 = size.parse().map_err(|_| damaged())?;
        let checked_at_ms: i64 = checked.parse().map_err(|_| damaged())?;
        Ok(Some(Stored {
            info: ContentInfo::new(url.to_string(), size, root, etag, lm),
            checked_at_ms,
        }))
    }

    pub(crate) async fn outboard(&self, root: Hash) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let (size, tree): (Option<u64>, Option<Vec<u8>>) = self
            .conn()
            .hmget(key(&["tree", &root.to_hex()]), &["size", "tree"])
            .await?;
        Ok(size.zip(tree))
    }

    pub(crate) async fn put(
        &self,
        info: ContentInfo,
        tree: Vec<u8>,
        checked_at_ms: i64,
    ) -> Result<(), StoreError> {
        let mut invocation = PUT.prepare_invoke();
        invocation
            .key(key(&["tree", &info.blake3.to_hex()]))
            .key(key(&["url", &info.url]))
            .key(key(&["count", "trees"]))
            .key(key(&["count", "urls"]))
            .arg(info.size)
            .arg(tree)
            .arg(info.blake3.to_hex())
            .arg(checked_at_ms)
            .arg(
                info.etag
                    .as_deref()
                    .map_or(String::new(), |e| format!("={e}")),
            )
            .arg(
                info.last_modified
                    .as_deref()
                    .map_or(String::new(), |e| format!("={e}")),
            );
        let () = invocation.invoke_async(&mut self.conn()).await?;
        Ok(())
    }

    pub(crate) async fn touch(&self, url: &str, checked_at_ms: i64) -> Result<(), StoreError> {
        let () = TOUCH
            .key(key(&["url", url]))
            .arg(checked_at_ms)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }

    pub(crate) async fn counts(&self) -> Result<(u64, u64), StoreError> {
        let (urls, trees): (Option<u64>, Option<u64>) = self
            .conn()
            .mget(&[key(&["count", "urls"]), key(&["count", "trees"])])
            .await?;
        Ok((urls.unwrap_or(0), trees.unwrap_or(0)))
    }

    /// Takes the lock `name` for `ttl` if nobody holds it: the token to extend or free it.
    pub(crate) async fn try_lock(
        &self,
        name: &str,
        ttl: Duration,
    ) -> Result<Option<String>, StoreError> {
        let token = format!("{:032x}", rand::random::<u128>());
        let set: Option<String> = redis::cmd("SET")
            .arg(key(&["lock", name]))
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis() as u64)
            .query_async(&mut self.conn())
            .await?;
        Ok(set.map(|_| token))
    }

    /// Extends a lock still held with `token`; false when it was lost (expired, taken).
    pub(crate) async fn extend(
        &self,
        name: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let held: i64 = EXTEND
            .key(key(&["lock", name]))
            .arg(token)
            .arg(ttl.as_millis() as u64)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(held == 1)
    }

    /// Frees a lock if `token` still holds it.
    pub(crate) async fn unlock(&self, name: &str, token: &str) -> Result<(), StoreError> {
        let _: i64 = UNLOCK
            .key(key(&["lock", name]))
            .arg(token)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }

    /// Runs `work` holding the lock `name`, extended while it runs (a gateway that dies frees
    /// it within `ttl`); `None`, without running it, when another holds the lock.
    pub(crate) async fn while_locked<F: std::future::Future>(
        &self,
        name: &str,
        ttl: Duration,
        work: F,
    ) -> Result<Option<F::Output>, StoreError> {
        let Some(token) = self.try_lock(name, ttl).await? else {
            return Ok(None);
        };
        let mut work = std::pin::pin!(work);
        let mut tick = tokio::time::interval(ttl / 3);
        tick.tick().await;
        let out = loop {
            tokio::select! {
                out = &mut work => break out,
                _ = tick.tick() => match self.extend(name, &token, ttl).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(lock = name, "lost a lock while working (Redis restarted or too slow?)"),
                    Err(e) => tracing::warn!(lock = name, error = %e, "could not extend a lock"),
                },
            }
        };
        if let Err(e) = self.unlock(name, &token).await {
            tracing::debug!(lock = name, error = %e, "could not free a lock: it expires");
        }
        Ok(Some(out))
    }

    /// A station's playlist as some gateway last read it: how long it stays fresh (0: stale
    /// or never read) and the copy, if one is held.
    pub(crate) async fn playlist(
        &self,
        url: &str,
    ) -> Result<(u64, Option<SharedPlaylist>), StoreError> {
        type Fields = (
            Option<Vec<u8>>,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let (pttl, (body, etag, origin_etag, origin_last_modified)): (i64, Fields) = redis::pipe()
            .pttl(key(&["playlist-fresh", url]))
            .cmd("HMGET")
            .arg(key(&["playlist", url]))
            .arg(&["body", "etag", "oetag", "olm"])
            .query_async(&mut self.conn())
            .await?;
        let copy = body.zip(etag).map(|(body, etag)| SharedPlaylist {
            body,
            etag,
            origin_etag,
            origin_last_modified,
        });
        Ok((u64::try_from(pttl).unwrap_or(0), copy))
    }

    /// Records a playlist just read (or confirmed unchanged: `copy` is the one held) as fresh
    /// for `fresh`; the copy itself is kept an hour for conditional reads.
    pub(crate) async fn put_playlist(
        &self,
        url: &str,
        copy: &SharedPlaylist,
        fresh: Duration,
    ) -> Result<(), StoreError> {
        let k = key(&["playlist", url]);
        let mut pipe = redis::pipe();
        pipe.atomic().del(&k).hset_multiple(
            &k,
            &[
                ("body", copy.body.as_slice()),
                ("etag", copy.etag.as_bytes()),
            ],
        );
        if let Some(e) = &copy.origin_etag {
            pipe.hset(&k, "oetag", e);
        }
        if let Some(lm) = &copy.origin_last_modified {
            pipe.hset(&k, "olm", lm);
        }
        pipe.expire(&k, PLAYLIST_KEPT_S).pset_ex(
            key(&["playlist-fresh", url]),
            1,
            fresh.as_millis() as u64,
        );
        let () = pipe.query_async(&mut self.conn()).await?;
        Ok(())
    }

    /// Adds report sums (HINCRBY) and listeners (one HyperLogLog per station and minute, so
    /// gateways' counts make a union, not a sum), in one transaction so a reader never sees
    /// the sums without their listeners; prunes what is past keeping.
    pub(crate) async fn add_report(
        &self,
        batch: &Batch,
        keep_after_ms: i64,
    ) -> Result<(), StoreError> {
        let keep_s = (crate::report::KEEP.as_secs()) as i64;
        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut stations = std::collections::HashSet::new();
        for (st, start, url, sums) in &batch.entries {
            let k = report_key(st);
            let member = format!("{start}|{url}");
            pipe.hincr(k("entries"), format!("o:{member}"), sums.origin_bytes)
                .hincr(k("entries"), format!("p:{member}"), sums.peer_bytes)
                .hincr(k("entries"), format!("s:{member}"), sums.silence_ms)
                .zadd(k("starts"), &member, *start)
                .ignore()
                .ignore()
                .ignore()
                .ignore();
            stations.insert(st.clone());
        }
        for (st, minute, ids) in &batch.listeners {
            if ids.is_empty() {
                continue;
            }
            let k = report_key(st);
            pipe.cmd("PFADD")
                .arg(k(&format!("m:{minute}")))
                .arg(ids)
                .ignore()
                .expire(k(&format!("m:{minute}")), keep_s)
                .ignore()
                .zadd(k("minutes"), minute, *minute)
                .ignore();
            stations.insert(st.clone());
        }
        for st in &stations {
            let k = report_key(st);
            pipe.expire(k("entries"), keep_s)
                .ignore()
                .expire(k("starts"), keep_s)
                .ignore()
                .expire(k("minutes"), keep_s)
                .ignore();
        }
        let () = pipe.query_async(&mut self.conn()).await?;
        for st in &stations {
            let k = report_key(st);
            let () = PRUNE_REPORT
                .key(k("entries"))
                .key(k("starts"))
                .key(k("minutes"))
                .arg(keep_after_ms)
                .invoke_async(&mut self.conn())
                .await?;
        }
        Ok(())
    }

    pub(crate) async fn report(
        &self,
        station: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Report, StoreError> {
        let k = report_key(station);
        let mut conn = self.conn();
        let to = format!("({to_ms}");
        let minutes: Vec<i64> = conn.zrangebyscore(k("minutes"), from_ms, &to).await?;
        let mut out = Report::default();
        if !minutes.is_empty() {
            let mut pipe = redis::pipe();
            for m in &minutes {
                pipe.cmd("PFCOUNT").arg(k(&format!("m:{m}")));
            }
            let counts: Vec<u64> = pipe.query_async(&mut conn).await?;
            out.listeners = minutes
                .into_iter()
                .zip(counts)
                .filter(|(_, n)| *n > 0)
                .collect();
        }
        let members: Vec<String> = conn.zrangebyscore(k("starts"), from_ms, &to).await?;
        if !members.is_empty() {
            let fields: Vec<String> = members
                .iter()
                .flat_map(|m| [format!("o:{m}"), format!("p:{m}"), format!("s:{m}")])
                .collect();
            let values: Vec<Option<u64>> = conn.hmget(k("entries"), &fields).await?;
            for (m, v) in members.iter().zip(values.chunks_exact(3)) {
                let Some((start, url)) = m.split_once('|') else {
                    continue;
                };
                let Ok(start) = start.parse::<i64>() else {
                    continue;
                };
                let sums = Sums {
                    origin_bytes: v[0].unwrap_or(0),
                    peer_bytes: v[1].unwrap_or(0),
                    silence_ms: v[2].unwrap_or(0),
                };
                out.entries.push((start, url.to_string(), sums));
            }
        }
        Ok(out)
    }

    /// Whether someone holds the lock `name`.
    pub(crate) async fn is_locked(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.conn().exists(key(&["lock", name])).await?)
    }

    /// A token bucket per client address across all gateways: `rate` a second, bursts of
    /// `burst`.
    pub(crate) async fn allow(&self, ip: &str, rate: f64, burst: f64) -> Result<bool, StoreError> {
        let allowed: i64 = RATE
            .key(key(&["rate", ip]))
            .arg(rate)
            .arg(burst)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(allowed == 1)
    }

    /// Records an announce and answers the swarm's peers (see `ANNOUNCE`): the peers, and
    /// how long the tracker has known the announcer (`None`: not recorded).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn announce(
        &self,
        root: Hash,
        addr: SocketAddr,
        host: Option<String>,
        peer_id: &str,
        have: Have,
        event: Event,
        max: usize,
        limits: SwarmLimits,
    ) -> Result<(Vec<PeerInfo>, Option<u64>), StoreError> {
        let hex = root.to_hex();
        let swarm = |part: &str| format!("{PREFIX}swarm:{{{hex}}}:{part}");
        let tiebreak = crate::wire::member_hash(peer_id) >> 52;
        let mut invocation = ANNOUNCE.prepare_invoke();
        for part in ["since", "ids", "hosts", "none", "partial", "complete"] {
            invocation.key(swarm(part));
        }
        invocation
            .key(key(&["swarms"]))
            .key(key(&["swarm-peers"]))
            .arg(addr.to_string())
            .arg(host.unwrap_or_default())
            .arg(peer_id)
            .arg(have_code(have))
            .arg(match event {
                Event::Started => "started",
                Event::Update => "update",
                Event::Completed => "completed",
                Event::Stopped => "stopped",
            })
            .arg(limits.ttl_ms)
            .arg(max)
            .arg(limits.per_content)
            .arg(limits.per_host)
            .arg(limits.eldest)
            .arg(tiebreak)
            .arg(&*hex);
        let flat: Vec<redis::Value> = invocation.invoke_async(&mut self.conn()).await?;
        parse_answer(&flat).ok_or_else(|| StoreError::Damaged(format!("swarm {hex}")))
    }

    /// Peers and swarms recorded across all gateways (swarms gone quiet are dropped here).
    pub(crate) async fn swarm_counts(&self) -> Result<(u64, u64), StoreError> {
        let (peers, swarms): (i64, i64) = COUNT_SWARMS
            .key(key(&["swarms"]))
            .key(key(&["swarm-peers"]))
            .invoke_async(&mut self.conn())
            .await?;
        Ok((peers.max(0) as u64, swarms.max(0) as u64))
    }
}

fn have_code(have: Have) -> u8 {
    match have {
        Have::None => 0,
        Have::Partial => 1,
        Have::Complete => 2,
    }
}

fn parse_answer(flat: &[redis::Value]) -> Option<(Vec<PeerInfo>, Option<u64>)> {
    use redis::FromRedisValue;
    let (first, rest) = flat.split_first()?;
    let own_age = i64::from_redis_value_ref(first).ok()?;
    let mut peers = Vec::with_capacity(rest.len() / 4);
    for p in rest.chunks_exact(4) {
        let addr = String::from_redis_value_ref(&p[0]).ok()?;
        let peer_id = String::from_redis_value_ref(&p[1]).ok()?;
        let have = match i64::from_redis_value_ref(&p[2]).ok()? {
            2 => Have::Complete,
            1 => Have::Partial,
            _ => Have::None,
        };
        let age_ms = i64::from_redis_value_ref(&p[3]).ok()?.max(0) as u64;
        peers.push(PeerInfo {
            peer_id,
            addr,
            have,
            age_ms,
        });
    }
    Some((peers, u64::try_from(own_age).ok()))
}

/// KEYS: tree, url, count:trees, count:urls. ARGV: size, tree, root, checked, `=etag` or
/// empty, `=last-modified` or empty.
static PUT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HSETNX', KEYS[1], 'tree', ARGV[2]) == 1 then
  redis.call('HSET', KEYS[1], 'size', ARGV[1])
  redis.call('INCR', KEYS[3])
end
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('INCR', KEYS[4]) end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'root', ARGV[3], 'size', ARGV[1], 'checked', ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[2], 'etag', string.sub(ARGV[5], 2)) end
if ARGV[6] ~= '' then redis.call('HSET', KEYS[2], 'lm', string.sub(ARGV[6], 2)) end
",
    )
});

static TOUCH: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'checked', ARGV[1]) end
",
    )
});

static EXTEND: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
",
    )
});

static UNLOCK: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
",
    )
});

/// A token bucket: KEYS[1] the address's bucket; ARGV rate per second, burst.
static RATE: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(b[1]) or burst, tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) / 1000 * rate)
local ok = 0
if tokens >= 1 then tokens = tokens - 1; ok = 1 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return ok
",
    )
});

/// One announce, atomically (docs/design.md section 7).
///
/// A swarm is six keys, all expiring one TTL after its last announce: `since` (members scored
/// by when first seen, on Redis's clock, times 4096 plus 12 bits of the peer id's hash, so
/// "the eldest" read the same in every answer), `ids` (member → `have host since expires
/// peer_id`: all an answer needs, in one read), `hosts` (members per host, for the per-host
/// cap), and one sorted set per have-state scored by expiry time (to prune, and to pick
/// holders first at random). Expired members are pruned here, a bounded number per announce.
///
/// KEYS: since, ids, hosts, none, partial, complete, swarms (index: root by expiry),
/// swarm-peers (root → members). ARGV: addr, host ('' = not capped), peer_id, have (0-2),
/// event, ttl_ms, max, per_content, per_host, eldest, tiebreak (0-4095), root.
/// Returns {own age or -1, then addr, peer_id, have, age per peer}.
static ANNOUNCE: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
local EPOCH = 1767225600000
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local me, host, id = ARGV[1], ARGV[2], ARGV[3]
local have, event, ttl = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local max, per_content, per_host = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local eldest_n = math.min(tonumber(ARGV[10]), max)
local sets = {KEYS[4], KEYS[5], KEYS[6]}
if event == 'completed' then have = 2 end
local expires = string.format('%.0f', now + ttl)

local function parse(v)
  local h, ho, si, ex, i = string.match(v, '^(%d) (%S*) (%d+) (%d+) (.*)$')
  return tonumber(h), ho, si, tonumber(ex), i
end
local function forget(addr)
  local v = redis.call('HGET', KEYS[2], addr)
  if not v then return end
  local _, ho = parse(v)
  redis.call('HDEL', KEYS[2], addr)
  redis.call('ZREM', KEYS[1], addr)
  for _, s in ipairs(sets) do redis.call('ZREM', s, addr) end
  if ho ~= '' and redis.call('HINCRBY', KEYS[3], ho, -1) <= 0 then redis.call('HDEL', KEYS[3], ho) end
end

for _, s in ipairs(sets) do
  for _, addr in ipairs(redis.call('ZRANGEBYSCORE', s, '-inf', now, 'LIMIT', 0, 64)) do forget(addr) end
end

local own_since = nil
if event == 'stopped' then
  forget(me)
else
  local old = redis.call('HGET', KEYS[2], me)
  if old then
    local oh, ho, si = parse(old)
    if oh ~= have then redis.call('ZREM', sets[oh + 1], me) end
    redis.call('ZADD', sets[have + 1], expires, me)
    redis.call('HSET', KEYS[2], me, have .. ' ' .. ho .. ' ' .. si .. ' ' .. expires .. ' ' .. id)
    own_since = si
  elseif redis.call('ZCARD', KEYS[1]) < per_content
      and (host == '' or (tonumber(redis.call('HGET', KEYS[3], host)) or 0) < per_host) then
    local si = string.format('%.0f', now - EPOCH)
    redis.call('ZADD', KEYS[1], string.format('%.0f', (now - EPOCH) * 4096 + tonumber(ARGV[11])), me)
    redis.call('ZADD', sets[have + 1], expires, me)
    redis.call('HSET', KEYS[2], me, have .. ' ' .. host .. ' ' .. si .. ' ' .. expires .. ' ' .. id)
    if host ~= '' then redis.call('HINCRBY', KEYS[3], host, 1) end
    own_since = si
  end
end

local members = redis.call('ZCARD', KEYS[1])
if members == 0 then
  redis.call('ZREM', KEYS[7], ARGV[12])
  redis.call('HDEL', KEYS[8], ARGV[12])
else
  for i = 1, 6 do redis.call('PEXPIRE', KEYS[i], ttl) end
  redis.call('ZADD', KEYS[7], expires, ARGV[12])
  redis.call('HSET', KEYS[8], ARGV[12], members)
end

local out = {own_since and (now - EPOCH - tonumber(own_since)) or -1}
local chosen, picked = {}, 0
-- Adds the live ones of `addrs` (in order) until `limit` are picked.
local function add_from(addrs, limit)
  if #addrs == 0 then return end
  local vals = redis.call('HMGET', KEYS[2], unpack(addrs))
  for j, addr in ipairs(addrs) do
    if picked >= limit then return end
    local v = vals[j]
    if v and addr ~= me and not chosen[addr] then
      local h, _, si, ex, i = parse(v)
      if ex > now then
        chosen[addr] = true
        picked = picked + 1
        table.insert(out, addr); table.insert(out, i); table.insert(out, h)
        table.insert(out, now - EPOCH - tonumber(si))
      end
    end
  end
end
if eldest_n > 0 then
  add_from(redis.call('ZRANGE', KEYS[1], 0, eldest_n + 8), eldest_n)
end
for h = 2, 0, -1 do
  if picked >= max then break end
  local r = redis.call('ZRANDMEMBER', sets[h + 1], max - picked + eldest_n + 1)
  add_from(r, max)
end
return out
",
    )
});

/// KEYS: a station's entries, starts, minutes. ARGV: the oldest start and minute kept.
static PRUNE_REPORT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1], 'LIMIT', 0, 256)) do
  redis.call('HDEL', KEYS[1], 'o:' .. m, 'p:' .. m, 's:' .. m)
  redis.call('ZREM', KEYS[2], m)
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[1])
",
    )
});

/// KEYS: swarms, swarm-peers. Drops swarms past their expiry; returns {peers, swarms}.
static COUNT_SWARMS: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, root in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  redis.call('HDEL', KEYS[2], root)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local peers = 0
for _, n in ipairs(redis.call('HVALS', KEYS[2])) do peers = peers + tonumber(n) end
return {peers, redis.call('ZCARD', KEYS[1])}
",
    )
});
