//! Whose request this is: the connecting address, or, when that is a trusted proxy (a load
//! balancer in front of several gateways), the client it names in `X-Forwarded-For`.
//!
//! The header is a list each hop appends to, so only the entries written by trusted hops can
//! be believed: read from the right, skip trusted proxies, and the first address that is not
//! one is the client. Anything left of it was written by the client itself and is ignored.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The client's address for a request that arrived from `peer`.
pub(crate) fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| {
        let ip = ip.to_canonical();
        trusted.iter().any(|net| net.contains(&ip))
    };
    let mut client = peer.to_canonical();
    if !is_trusted(&client) {
        return client;
    }
    // Several headers count as one list, in order (RFC 9110 section 5.3).
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        // A hop a trusted proxy wrote is a bare address; garbage stops the walk at the
        // last address known good.
        let Some(ip) = parse_hop(hop) else { break };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_proxy() {
        let trusted: Vec<IpNet> = vec!["10.1.0.0/16".parse().unwrap()];
        let forged = headers(&["198.51.100.7"]);
        assert_eq!(
            client_ip(ip("203.0.113.5"), &forged, &trusted),
            ip("203.0.113.5"),
            "untrusted: the header is ignored"
        );
        assert_eq!(
            client_ip(ip("10.1.2.3"), &forged, &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(ip("10.1.2.3"), &forged, &[]),
            ip("10.1.2.3"),
            "no proxies configured: never"
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted: Vec<IpNet> = vec!["10.1.0.0/16".parse().unwrap(), "fd00::/8".parse().unwrap()];
        // The client forged the first entry; our two proxies appended the rest.
        let h = headers(&["127.0.0.1, 198.51.100.7", "10.1.9.9"]);
        assert_eq!(client_ip(ip("10.1.2.3"), &h, &trusted), ip("198.51.100.7"));
        // All hops trusted: the leftmost is as far as we can know.
        let h = headers(&["10.1.0.5, 10.1.0.6"]);
        assert_eq!(client_ip(ip("10.1.2.3"), &h, &trusted), ip("10.1.0.5"));
        // Garbage where a trusted proxy should have written an address: the proxy.
        let h = headers(&["198.51.100.7, not-an-ip"]);
        assert_eq!(client_ip(ip("10.1.2.3"), &h, &trusted), ip("10.1.2.3"));
        // Mapped IPv4 and ports are read as the plain address.
        let h = headers(&["[2001:db8::1]:4711"]);
        assert_eq!(
            client_ip(ip("::ffff:10.1.2.3"), &h, &trusted),
            ip("2001:db8::1")
        );
        let h = headers(&["::ffff:198.51.100.7"]);
        assert_eq!(client_ip(ip("fd00::1"), &h, &trusted), ip("198.51.100.7"));
        // No header from a trusted proxy: the proxy itself.
        assert_eq!(
            client_ip(ip("10.1.2.3"), &HeaderMap::new(), &trusted),
            ip("10.1.2.3")
        );
    }
}
