//! The tracker's peer table and the per-IP rate limiter: plain data structures, time passed in.
//!
//! A peer is keyed by the address it announced from (IP the request came from, port it gave),
//! so one host cannot fill a swarm under many peer ids, and no one can name a third party's
//! address. Entries expire after a few missed announce intervals. Memory is bounded per
//! content, per host within a swarm (an address, or an IPv6 /64), and in total; when full, new
//! peers are answered but not recorded.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use alluvium_content::Hash;
use rand::seq::SliceRandom;
use rand::Rng;

use crate::wire::{member_hash, Event, Have, PeerInfo, ELDEST_PER_ANSWER};

#[derive(Debug, Clone)]
struct Peer {
    peer_id: String,
    have: Have,
    expires_ms: u64,
    /// When the tracker first recorded it in this swarm: its `age_ms` is counted from here,
    /// on the tracker's clock, whatever the peer says of itself.
    since_ms: u64,
    /// `member_hash(peer_id)`: with `since_ms`, its place among the eldest.
    hash: u64,
}

/// Limits of the table.
#[derive(Debug, Clone, Copy)]
pub struct TrackerLimits {
    pub per_content: usize,
    /// Peers of one swarm from one host ([`Host`]): one machine announcing thousands of ports
    /// cannot crowd honest peers out of a swarm.
    pub per_host: usize,
    pub total: usize,
    /// How long an announce keeps a peer listed.
    pub ttl_ms: u64,
}

/// Where peers come from, for the per-host cap: an IPv4 address, or an IPv6 /64 (what one
/// subscriber gets). Loopback is not capped: it is this machine's own listeners (demos, tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Host {
    V4([u8; 4]),
    V6([u16; 4]),
    Loopback,
}

impl Host {
    fn of(addr: SocketAddr) -> Host {
        match addr.ip().to_canonical() {
            ip if ip.is_loopback() => Host::Loopback,
            IpAddr::V4(v4) => Host::V4(v4.octets()),
            IpAddr::V6(v6) => {
                let s = v6.segments();
                Host::V6([s[0], s[1], s[2], s[3]])
            }
        }
    }
}

/// The host `addr` counts against in the per-host cap, as text (the shared store's key);
/// `None` for loopback, which is not capped.
pub(crate) fn host_key(addr: SocketAddr) -> Option<String> {
    match Host::of(addr) {
        Host::Loopback => None,
        Host::V4(o) => Some(format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3])),
        Host::V6(s) => Some(format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])),
    }
}

/// One content's peers, and how many come from each host.
#[derive(Debug, Default)]
struct Swarm {
    peers: HashMap<SocketAddr, Peer>,
    per_host: HashMap<Host, usize>,
}

impl Swarm {
    fn len(&self) -> usize {
        self.peers.len()
    }

    fn insert(&mut self, addr: SocketAddr, peer: Peer) {
        if self.peers.insert(addr, peer).is_none() {
            *self.per_host.entry(Host::of(addr)).or_insert(0) += 1;
        }
    }

    fn remove(&mut self, addr: &SocketAddr) {
        if self.peers.remove(addr).is_some() {
            self.forget_host(*addr);
        }
    }

    fn forget_host(&mut self, addr: SocketAddr) {
        let host = Host::of(addr);
        if let Some(n) = self.per_host.get_mut(&host) {
            *n -= 1;
            if *n == 0 {
                self.per_host.remove(&host);
            }
        }
    }

    /// Drops the peers whose announce ran out.
    fn expire(&mut self, now_ms: u64) {
        let gone: Vec<SocketAddr> = self
            .peers
            .iter()
            .filter(|(_, p)| p.expires_ms <= now_ms)
            .map(|(a, _)| *a)
            .collect();
        for addr in gone {
            self.remove(&addr);
        }
    }

    /// Whether another peer from `addr`'s host may be recorded.
    fn host_has_room(&self, addr: SocketAddr, per_host: usize) -> bool {
        let host = Host::of(addr);
        host == Host::Loopback || self.per_host.get(&host).copied().unwrap_or(0) < per_host
    }
}

/// All swarms the tracker knows.
#[derive(Debug)]
pub struct Tracker {
    swarms: HashMap<Hash, Swarm>,
    total: usize,
    limits: TrackerLimits,
}

impl Tracker {
    pub fn new(limits: TrackerLimits) -> Self {
        Self {
            swarms: HashMap::new(),
            total: 0,
            limits,
        }
    }

    /// Records an announce from `addr` and answers up to `max` other peers of the swarm,
    /// those holding more first, in random order within each group.
    #[allow(clippy::too_many_arguments)]
    pub fn announce(
        &mut self,
        now_ms: u64,
        root: Hash,
        addr: SocketAddr,
        peer_id: &str,
        have: Have,
        event: Event,
        max: usize,
        rng: &mut impl Rng,
    ) -> Vec<PeerInfo> {
        let ttl = self.limits.ttl_ms;
        let per_content = self.limits.per_content;
        let room = self.total < self.limits.total;
        let per_host = self.limits.per_host;
        let swarm = self.swarms.entry(root).or_default();
        let before = swarm.len();
        swarm.expire(now_ms);
        if event == Event::Stopped {
            swarm.remove(&addr);
        } else if let Some(p) = swarm.peers.get_mut(&addr) {
            if p.peer_id != peer_id {
                p.peer_id = peer_id.to_string();
                p.hash = member_hash(peer_id);
            }
            p.have = if event == Event::Completed {
                Have::Complete
            } else {
                have
            };
            p.expires_ms = now_ms + ttl;
        } else if room && swarm.len() < per_content && swarm.host_has_room(addr, per_host) {
            swarm.insert(
                addr,
                Peer {
                    peer_id: peer_id.to_string(),
                    hash: member_hash(peer_id),
                    have: if event == Event::Completed {
                        Have::Complete
                    } else {
                        have
                    },
                    expires_ms: now_ms + ttl,
                    since_ms: now_ms,
                },
            );
        }
        // `before` is part of `total`, so this cannot underflow.
        self.total = self.total - before + swarm.len();
        let answer = pick(&swarm.peers, addr, now_ms, max, rng);
        if swarm.len() == 0 {
            self.swarms.remove(&root);
        }
        answer
    }

    /// How long the tracker has known `addr` in `root`'s swarm, if it is recorded.
    pub fn age_of(&self, root: &Hash, addr: SocketAddr, now_ms: u64) -> Option<u64> {
        let peer = self.swarms.get(root)?.peers.get(&addr)?;
        Some(now_ms.saturating_sub(peer.since_ms))
    }

    fn recount(&mut self) {
        self.total = self.swarms.values().map(Swarm::len).sum();
    }

    /// Drops every expired peer (run now and then; announces also tidy their own swarm).
    pub fn expire(&mut self, now_ms: u64) {
        self.swarms.retain(|_, swarm| {
            swarm.expire(now_ms);
            swarm.len() > 0
        });
        self.recount();
    }

    /// Peers recorded in all.
    pub fn peers(&self) -> usize {
        self.total
    }

    /// Contents with at least one peer.
    pub fn swarms(&self) -> usize {
        self.swarms.len()
    }
}

fn pick(
    swarm: &HashMap<SocketAddr, Peer>,
    me: SocketAddr,
    now_ms: u64,
    max: usize,
    rng: &mut impl Rng,
) -> Vec<PeerInfo> {
    let mut others: Vec<(&SocketAddr, &Peer)> = swarm.iter().filter(|(a, _)| **a != me).collect();
    // The eldest first (the same ones in every answer, ordered as the members' pickers order
    // them), then the rest, complete holders first, at random. Selected, not sorted: a swarm
    // may be thousands and every announce picks.
    let eldest = ELDEST_PER_ANSWER.min(max).min(others.len());
    let key = |(a, p): &(&SocketAddr, &Peer)| (p.since_ms, p.hash, **a);
    if eldest > 0 && eldest < others.len() {
        others.select_nth_unstable_by_key(eldest - 1, key);
    }
    others[..eldest].sort_unstable_by_key(key);
    let rest = &mut others[eldest..];
    rest.shuffle(rng);
    // Stable sort keeps the shuffle within each group.
    rest.sort_by_key(|(_, p)| std::cmp::Reverse(p.have));
    others
        .into_iter()
        .take(max)
        .map(|(a, p)| PeerInfo {
            peer_id: p.peer_id.clone(),
            addr: a.to_string(),
            have: p.have,
            age_ms: now_ms.saturating_sub(p.since_ms),
        })
        .collect()
}

/// Token buckets per client IP: `rate` requests a second, bursts up to `4 * rate`.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: HashMap<IpAddr, (f64, u64)>,
    max_ips: usize,
}

impl RateLimiter {
    /// A limiter; `rate` 0 lets everything through.
    pub fn new(rate: u32, max_ips: usize) -> Self {
        Self {
            rate: f64::from(rate),
            burst: f64::from(rate) * 4.0,
            buckets: HashMap::new(),
            max_ips,
        }
    }

    /// Whether `ip` may make a request now.
    pub fn allow(&mut self, ip: IpAddr, now_ms: u64) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        if self.buckets.len() >= self.max_ips && !self.buckets.contains_key(&ip) {
            let (rate, burst) = (self.rate, self.burst);
            // Forget the IPs whose buckets have refilled: they are idle.
            self.buckets.retain(|_, (tokens, at)| {
                *tokens + (now_ms.saturating_sub(*at) as f64 / 1000.0) * rate < burst
            });
            if self.buckets.len() >= self.max_ips {
                return false;
            }
        }
        let (tokens, at) = self.buckets.entry(ip).or_insert((self.burst, now_ms));
        let refill = (now_ms.saturating_sub(*at) as f64 / 1000.0) * self.rate;
        *tokens = (*tokens + refill).min(self.burst);
        *at = now_ms;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::SeedableRng;

    fn limits() -> TrackerLimits {
        TrackerLimits {
            per_content: 3,
            per_host: 3,
            total: 5,
            ttl_ms: 1000,
        }
    }

    /// Limits no test of answers reaches.
    fn roomy() -> TrackerLimits {
        TrackerLimits {
            per_content: 1_000,
            per_host: 1_000,
            total: 10_000,
            ttl_ms: 60_000,
        }
    }

    fn addr(i: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, i], 7001))
    }

    #[test]
    fn peers_meet_expire_and_leave() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut t = Tracker::new(limits());
        let h = Hash::from(blake3::hash(b"x"));
        let a = t.announce(0, h, addr(1), "a", Have::None, Event::Started, 50, &mut rng);
        assert!(a.is_empty(), "no one else yet");
        let b = t.announce(
            10,
            h,
            addr(2),
            "b",
            Have::Partial,
            Event::Started,
            50,
            &mut rng,
        );
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].addr, "10.0.0.1:7001");
        t.announce(
            20,
            h,
            addr(3),
            "c",
            Have::Complete,
            Event::Completed,
            50,
            &mut rng,
        );
        // The eldest first (past them, holders first: see below).
        let d = t.announce(
            30,
            h,
            addr(4),
            "d",
            Have::None,
            Event::Started,
            50,
            &mut rng,
        );
        let ids: Vec<&str> = d.iter().map(|p| p.peer_id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(
            (d[0].age_ms, d[1].age_ms, d[2].age_ms),
            (30, 20, 10),
            "ages on the tracker's clock, from each one's first announce"
        );
        assert_eq!(t.peers(), 3, "the fourth did not fit (per-content cap 3)");
        assert_eq!(
            t.age_of(&h, addr(2), 30),
            Some(20),
            "an announcer's own age"
        );
        assert_eq!(t.age_of(&h, addr(4), 30), None, "not recorded");
        // a expires at 1000, b at 1010, c at 1020.
        let e = t.announce(
            1015,
            h,
            addr(5),
            "e",
            Have::None,
            Event::Update,
            50,
            &mut rng,
        );
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].peer_id, "c");
        assert_eq!(
            e[0].age_ms, 995,
            "announcing again does not make a peer younger"
        );
        t.announce(
            1016,
            h,
            addr(3),
            "c",
            Have::Complete,
            Event::Stopped,
            50,
            &mut rng,
        );
        t.expire(5000);
        assert_eq!((t.peers(), t.swarms()), (0, 0));
    }

    #[test]
    fn past_the_answer_size_every_answer_names_the_eldest_first() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let mut t = Tracker::new(roomy());
        let h = Hash::from(blake3::hash(b"x"));
        // 200 members, one a millisecond; the later ones complete.
        let member = |i: u16| SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 7001));
        for i in 0..200u16 {
            let have = if i >= 100 { Have::Complete } else { Have::None };
            t.announce(
                u64::from(i),
                h,
                member(i),
                "p",
                have,
                Event::Started,
                50,
                &mut rng,
            );
        }
        let eldest: Vec<String> = (0..ELDEST_PER_ANSWER as u16)
            .map(|i| member(i).to_string())
            .collect();
        let mut seen = std::collections::HashSet::new();
        for asker in 150..200u16 {
            let got = t.announce(
                500,
                h,
                member(asker),
                "p",
                Have::None,
                Event::Update,
                50,
                &mut rng,
            );
            assert_eq!(got.len(), 50);
            let first: Vec<&str> = got[..ELDEST_PER_ANSWER]
                .iter()
                .map(|p| p.addr.as_str())
                .collect();
            assert_eq!(
                first, eldest,
                "the same eldest, oldest first, in every answer"
            );
            // Then complete holders, at random.
            assert!(got[ELDEST_PER_ANSWER..]
                .iter()
                .all(|p| p.have == Have::Complete));
            seen.extend(got[ELDEST_PER_ANSWER..].iter().map(|p| p.addr.clone()));
        }
        assert!(seen.len() > 60, "the rest vary: {}", seen.len());
        // The eldest's own answer names the next eldest.
        let got = t.announce(
            501,
            h,
            member(0),
            "p",
            Have::None,
            Event::Update,
            50,
            &mut rng,
        );
        assert_eq!(got[0].addr, member(1).to_string());
        // An answer smaller than the eldest: the eldest only.
        let got = t.announce(
            502,
            h,
            member(199),
            "p",
            Have::None,
            Event::Update,
            3,
            &mut rng,
        );
        let addrs: Vec<String> = got.iter().map(|p| p.addr.clone()).collect();
        assert_eq!(addrs, eldest[..3]);
    }

    #[test]
    fn members_first_seen_in_the_same_millisecond_are_named_in_member_hash_order() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let mut t = Tracker::new(roomy());
        let h = Hash::from(blake3::hash(b"x"));
        let ids: Vec<String> = (0..60).map(|i| format!("peer-{i}")).collect();
        for (i, id) in ids.iter().enumerate() {
            let a = SocketAddr::from(([10, 0, 1, i as u8], 7001));
            t.announce(7, h, a, id, Have::None, Event::Started, 50, &mut rng);
        }
        let mut by_hash = ids.clone();
        by_hash.sort_unstable_by_key(|id| member_hash(id));
        let asker = SocketAddr::from(([10, 0, 2, 1], 7001));
        let got = t.announce(
            9,
            h,
            asker,
            "late",
            Have::None,
            Event::Started,
            50,
            &mut rng,
        );
        let named: Vec<&str> = got[..ELDEST_PER_ANSWER]
            .iter()
            .map(|p| p.peer_id.as_str())
            .collect();
        assert_eq!(named, by_hash[..ELDEST_PER_ANSWER]);
    }

    #[test]
    fn answers_are_capped_and_total_is_bounded() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let mut t = Tracker::new(TrackerLimits {
            per_content: 100,
            per_host: 100,
            total: 5,
            ttl_ms: 1000,
        });
        for i in 0..20u8 {
            let h = Hash::from(blake3::hash(&[i % 2]));
            t.announce(0, h, addr(i), "p", Have::None, Event::Started, 2, &mut rng);
        }
        assert_eq!(t.peers(), 5);
        let h = Hash::from(blake3::hash(&[0]));
        let got = t.announce(1, h, addr(99), "q", Have::None, Event::Update, 2, &mut rng);
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn one_host_cannot_crowd_a_swarm() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut t = Tracker::new(TrackerLimits {
            per_content: 100,
            per_host: 4,
            total: 10_000,
            ttl_ms: 1000,
        });
        let h = Hash::from(blake3::hash(b"x"));
        let ports = |ip: [u8; 4], n: u16| (0..n).map(move |p| SocketAddr::from((ip, 1000 + p)));
        for a in ports([203, 0, 113, 9], 5_000) {
            t.announce(
                0,
                h,
                a,
                "flood",
                Have::Complete,
                Event::Started,
                50,
                &mut rng,
            );
        }
        assert_eq!(t.peers(), 4, "one host, four peers");
        // An IPv6 /64 is one host too.
        for i in 0..100u16 {
            let a = SocketAddr::new(format!("2001:db8:1:2::{i:x}").parse().unwrap(), 7001);
            t.announce(0, h, a, "v6", Have::None, Event::Started, 50, &mut rng);
        }
        assert_eq!(t.peers(), 8);
        // An honest peer from elsewhere is recorded and meets the others.
        let got = t.announce(
            1,
            h,
            addr(7),
            "honest",
            Have::None,
            Event::Started,
            50,
            &mut rng,
        );
        assert_eq!(t.peers(), 9);
        assert_eq!(got.len(), 8);
        // A host's peer leaving makes room for another of its ports.
        t.announce(
            2,
            h,
            SocketAddr::from(([203, 0, 113, 9], 1000)),
            "flood",
            Have::None,
            Event::Stopped,
            50,
            &mut rng,
        );
        t.announce(
            2,
            h,
            SocketAddr::from(([203, 0, 113, 9], 9000)),
            "flood",
            Have::None,
            Event::Started,
            50,
            &mut rng,
        );
        assert_eq!(t.peers(), 9);
        // Loopback (this machine's own listeners) is not capped.
        for p in ports([127, 0, 0, 1], 20) {
            t.announce(3, h, p, "local", Have::None, Event::Started, 50, &mut rng);
        }
        assert_eq!(t.peers(), 29);
    }

    #[test]
    fn rate_limit() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let mut r = RateLimiter::new(10, 2);
        let allowed = (0..100).filter(|_| r.allow(ip, 0)).count();
        assert_eq!(allowed, 40, "a burst of 4x the rate");
        assert!(!r.allow(ip, 50));
        assert!(r.allow(ip, 200), "refilled 2 tokens after 200 ms");
        // Table full of busy IPs: a newcomer waits; once they are idle, it gets in.
        assert!(r.allow("10.0.0.2".parse().unwrap(), 200));
        assert!(!r.allow("10.0.0.3".parse().unwrap(), 200));
        assert!(r.allow("10.0.0.3".parse().unwrap(), 60_000));
        let mut off = RateLimiter::new(0, 1);
        assert!((0..10_000).all(|_| off.allow(ip, 0)));
    }
}
