#!/usr/bin/env python3
"""What a listener's uplink carried in a benchmark run: reads a packet capture taken in a
listener's network namespace and sorts every packet the listener sent by what it was.

Usage:  bench/wirelog.py CAPTURE.pcap LISTENER_IP [kinds|rate|connections]

- kinds        bytes on the wire (Ethernet frames) by kind, with counts and mean sizes:
               `part` (segments of `206` answers), `pure-ack`, `req-blob`, `req-have`,
               `resp-have` (a long poll's answer), `have-record` (records of a have stream,
               and other data outside answers), `resp-503`, `retrans`, `syn/fin/rst`, ...
- rate         the uplink's bytes per second in 5 s bins (256 kbit/s is 32.0 KB/s).
- connections  the listener's connections to peers' port 7001 by their first request, who
               closed them and their last status (a new connection costs half a kilobyte of
               handshakes and a slow start on thin links).

Taking the capture (root, tcpdump installed by hand: `apt-get install tcpdump`; nothing in
the tests needs it. During a run of the shared harness; listener `i` is
`127.77.1.i` in namespace `bn_c{i}`; stop tcpdump by its PID after the run):

    ip netns exec bn_c3 tcpdump -i eth0 -s 200 -w /tmp/cap3.pcap -U &

The namespace exists from the harness's "netns ready" line until the run ends; a loop that
waits for `ip netns list` to show it, then runs tcpdump, catches the whole run.

Written by hand (standard library only): the classic pcap layout and IPv4/TCP headers are a
few lines, and the classes are our own protocol's.
"""
import collections
import struct
import sys

ETH = 14


def packets(path):
    """(seconds since the first packet, wire length, IPv4 packet bytes) for each IPv4 frame."""
    with open(path, "rb") as f:
        head = f.read(24)
        magic = struct.unpack("<I", head[:4])[0]
        scale = 1e9 if magic == 0xA1B23C4D else 1e6
        t0 = None
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            sec, frac, incl, orig = struct.unpack("<IIII", rec)
            data = f.read(incl)
            t = sec + frac / scale
            t0 = t if t0 is None else t0
            if len(data) >= ETH + 20 and data[12:14] == b"\x08\x00":
                yield t - t0, orig, data[ETH:]


def tcp_of(ip):
    """(src, dst, sport, dport, seq, flags, payload length, payload start) or None."""
    if ip[9] != 6:
        return None
    ihl = (ip[0] & 15) * 4
    tcp = ip[ihl:]
    if len(tcp) < 20:
        return None
    sport, dport, seq = struct.unpack("!HHI", tcp[:8])
    doff = (tcp[12] >> 4) * 4
    total = struct.unpack("!H", ip[2:4])[0]
    src = ".".join(map(str, ip[12:16]))
    dst = ".".join(map(str, ip[16:20]))
    return src, dst, sport, dport, seq, tcp[13], total - ihl - doff, tcp[doff:]


def kinds(path, me):
    size, count = collections.Counter(), collections.Counter()
    sent_to = {}  # flow -> highest sequence end sent (retransmissions are at or below it)
    answer = {}  # flow -> kind of the last answer head sent on it
    for _, wire, ip in packets(path):
        t = tcp_of(ip)
        if t is None or t[0] != me:
            continue
        _, dst, sport, dport, seq, flags, plen, pay = t
        flow = (sport, dst, dport)
        if plen > 0:
            end = (seq + plen) & 0xFFFFFFFF
            ahead = (end - sent_to[flow]) & 0xFFFFFFFF if flow in sent_to else 1
            if ahead == 0 or ahead > 0x7FFFFFFF:
                size["retrans"] += wire
                count["retrans"] += 1
                continue
            sent_to[flow] = end
        if plen == 0:
            kind = "syn/fin/rst" if flags & 0x07 else "pure-ack"
        elif pay.startswith(b"GET "):
            line = pay.split(b" ", 2)[1] if b" " in pay else b""
            kind = ("req-have" if b"/have" in line else
                    "req-peers" if b"/peers" in line else
                    "req-blob" if b"/v1/blob/" in line else "req-other")
        elif pay.startswith(b"HTTP/1.1 "):
            status, low = pay[9:12], pay.lower()
            if status == b"206":
                kind = "part"
            elif status == b"200" and b"alluvium-have-version" in low:
                kind = "resp-have"
            else:
                kind = "resp-" + status.decode(errors="replace")
            answer[flow] = kind
        else:
            kind = "part" if answer.get(flow) == "part" else "have-record"
        size[kind] += wire
        count[kind] += 1
    total = sum(size.values())
    for kind, n in size.most_common():
        print(f"{kind:14s} {n / 1e6:8.3f} MB {100 * n / max(total, 1):5.1f} %  "
              f"n={count[kind]}  mean {n / max(count[kind], 1):.0f} B")
    print(f"{'total':14s} {total / 1e6:8.3f} MB")


def rate(path, me):
    bins = collections.Counter()
    for t, wire, ip in packets(path):
        if ".".join(map(str, ip[12:16])) == me:
            bins[int(t // 5)] += wire
    print(" ".join(f"{k * 5}:{bins[k] / 5000:.1f}" for k in sorted(bins)))


def connections(path, me):
    conns = {}
    for t, _, ip in packets(path):
        c = tcp_of(ip)
        if c is None:
            continue
        src, dst, sport, dport, _, flags, _, pay = c
        if src == me and dport == 7001:
            key, mine = (sport, dst), True
        elif dst == me and sport == 7001 and dport != 7001:
            key, mine = (dport, src), False
        else:
            continue
        s = conns.setdefault(key, {"asks": [], "statuses": [], "closed": "-", "reset": "-"})
        if mine and pay.startswith(b"GET "):
            line = pay.split(b" ", 2)[1]
            s["asks"].append("have" if b"/have" in line else
                             "peers" if b"/peers" in line else "blob")
        if not mine and pay.startswith(b"HTTP/1.1 "):
            s["statuses"].append(pay[9:12].decode(errors="replace"))
        if flags & 1 and s["closed"] == "-":
            s["closed"] = "by me" if mine else "by peer"
        if flags & 4 and s["reset"] == "-":
            s["reset"] = "by me" if mine else "by peer"
    shapes = collections.Counter()
    for s in conns.values():
        first = s["asks"][0] if s["asks"] else "no ask"
        shapes[(first, len(s["asks"]), s["closed"], s["reset"],
                s["statuses"][-1] if s["statuses"] else "-")] += 1
    print(f"{len(conns)} connections to peers: count (first ask, asks, closed, reset, last status)")
    for shape, n in shapes.most_common(20):
        print(n, shape)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    mode = sys.argv[3] if len(sys.argv) > 3 else "kinds"
    {"kinds": kinds, "rate": rate, "connections": connections}[mode](sys.argv[1], sys.argv[2])


if __name__ == "__main__":
    main()
