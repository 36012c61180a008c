//! Which origins the gateway may fetch from.
//!
//! A gateway fetches URLs that strangers name, so without a policy it would be a way into the
//! network it runs in (SSRF). Private, loopback, link-local, shared (CGNAT), unspecified and
//! multicast addresses are refused unless `--allow-private`. The check happens where it cannot
//! be dodged: in the DNS resolver the HTTP client connects through (so a name that resolves, or
//! re-resolves, to 127.0.0.1 is caught), for IP-literal URLs before the request, and for every
//! redirect.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use crate::config::{Config, MAX_REDIRECTS};

/// True when `ip` is a public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64.0.0/10, carrier-grade NAT
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0.0/24, protocol assignments
                || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18.0.0/15, benchmarking
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_ipv4(v6) {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64 (and its local use): reaches IPv4
                || (s[0] == 0x2001 && s[1] == 0) // Teredo: a tunnel to an IPv4 address
                || (s[0] == 0x2001 && s[1] == 0xdb8) // documentation
                || (s[0] == 0x100 && s[1..4] == [0, 0, 0])) // discard
        }
    }
}

/// The IPv4 address an IPv6 address carries, in every form a request could reach it by:
/// mapped (`::ffff:a.b.c.d`), translated (`::ffff:0:a.b.c.d`), compatible (`::a.b.c.d`) and
/// 6to4 (`2002:aabb:ccdd::/48`). So `[::127.0.0.1]` is
/// refused as 127.0.0.1 is.
fn embedded_ipv4(v6: std::net::Ipv6Addr) -> Option<std::net::Ipv4Addr> {
    let s = v6.segments();
    let v4 = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        std::net::Ipv4Addr::new(a, b, c, d)
    };
    if let Some(mapped) = v6.to_ipv4_mapped() {
        return Some(mapped);
    }
    match s {
        [0, 0, 0, 0, 0xffff, 0, hi, lo] => Some(v4(hi, lo)),
        // `::` and `::1` too: 0.0.0.0 and 0.0.0.1 are refused as well.
        [0, 0, 0, 0, 0, 0, hi, lo] => Some(v4(hi, lo)),
        [0x2002, hi, lo, ..] => Some(v4(hi, lo)),
        _ => None,
    }
}

/// The address policy.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub allow_private: bool,
}

impl Policy {
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allow_private || is_public(ip)
    }

    /// Checks a URL before any request: scheme, and the host when it is an IP literal. Returns
    /// the host that is refused.
    pub fn check_url(&self, url: &Url) -> Result<(), UrlRefusal> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(UrlRefusal::Scheme(url.scheme().to_string()));
        }
        match url.host() {
            None => Err(UrlRefusal::NoHost),
            Some(Host::Ipv4(ip)) if !self.allows(IpAddr::V4(ip)) => {
                Err(UrlRefusal::Address(ip.to_string()))
            }
            Some(Host::Ipv6(ip)) if !self.allows(IpAddr::V6(ip)) => {
                Err(UrlRefusal::Address(ip.to_string()))
            }
            Some(Host::Domain(d)) if !self.allow_private && d.eq_ignore_ascii_case("localhost") => {
                Err(UrlRefusal::Address(d.to_string()))
            }
            _ => Ok(()),
        }
    }
}

/// Why a URL is refused before fetching.
#[derive(Debug, thiserror::Error)]
pub enum UrlRefusal {
    #[error("only http and https URLs can be fetched, not {0}:")]
    Scheme(String),
    #[error("the URL has no host")]
    NoHost,
    #[error("{0}")]
    Address(String),
}

/// A name resolved only to refused addresses: carried through reqwest's error chain so the
/// fetch reports "not allowed" rather than "unreachable".
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves only to addresses the gateway may not fetch from")]
pub struct Refused {
    pub host: String,
}

/// reqwest's resolver with the policy applied to every answer.
struct PolicyResolver {
    policy: Policy,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| policy.allows(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(Box::new(Refused { host }) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The HTTP client for origin fetches: policy in the resolver and on redirects, timeouts.
pub fn origin_client(config: &Config) -> reqwest::Result<reqwest::Client> {
    let policy = Policy {
        allow_private: config.allow_private,
    };
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        match policy.check_url(attempt.url()) {
            Ok(()) => attempt.follow(),
            Err(UrlRefusal::Address(host)) => attempt.error(Refused { host }),
            Err(other) => attempt.error(other),
        }
    });
    reqwest::Client::builder()
        .user_agent(concat!("alluvium-gateway/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(PolicyResolver { policy }))
        .redirect(redirects)
        .connect_timeout(config.connect_timeout)
        .read_timeout(config.idle_timeout)
        // A proxy would connect where the policy cannot see (a name resolving to loopback, say):
        // origins are reached directly, whatever `HTTP_PROXY` says.
        .no_proxy()
        // Bytes are hashed as sent: a transparently decompressed body would hash wrong.
        .no_gzip()
        .no_brotli()
        .no_deflate()
        .build()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::",
            "::127.0.0.1",
            "::ffff:0:127.0.0.1",
            "::ffff:0:10.0.0.1",
            "::10.0.0.1",
            "2002:7f00:1::1",
            "2002:c0a8:101::",
            "64:ff9b::7f00:1",
            "64:ff9b:1::a00:1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "fec0::1",
            "100::1",
            "::101",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "2002:808:808::1",
            "::8.8.8.8",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn urls() {
        let strict = Policy {
            allow_private: false,
        };
        let open = Policy {
            allow_private: true,
        };
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(strict.check_url(&u("http://127.0.0.1:8080/a.mp3")).is_err());
        assert!(strict.check_url(&u("http://[::1]/a.mp3")).is_err());
        assert!(strict.check_url(&u("http://[::127.0.0.1]/a.mp3")).is_err());
        assert!(strict
            .check_url(&u("http://[2002:7f00:1::]/a.mp3"))
            .is_err());
        assert!(strict.check_url(&u("http://localhost/a.mp3")).is_err());
        assert!(strict.check_url(&u("http://radio.example/a.mp3")).is_ok());
        assert!(open.check_url(&u("http://127.0.0.1:8080/a.mp3")).is_ok());
        assert!(open.check_url(&u("file:///etc/passwd")).is_err());
        assert!(open.check_url(&u("ftp://radio.example/a")).is_err());
    }
}
