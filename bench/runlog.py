#!/usr/bin/env python3
"""Where an Alluvium benchmark run lost its time: reads one run directory of the shared harness
(`../shared/bench/results/alluvium-n30-.../`) and prints what the RESULT line cannot show.

Usage:  bench/runlog.py RUN_DIR [silence|ontime|origin|latency|missed|holders|uplinks|all]

- silence  each listener's own `alluvium_stall_seconds_total` (the silence it played): the
           harness counts silent frames as delivered bytes, so this is the figure that matters.
- ontime   share of the parts due in each listener's time that arrived 0.5 s before their
           moment, per 20 s of listening.
- origin   per entry and part: when it was due and which listener took it from the origin when
           (several listeners = copies; a first copy after the moment = the swarm was behind).
- latency  asks per 15 s of the run, from peers and from the origin: median and p90 seconds
           from ask to verified answer, and failures.
- missed   parts a listener missed in its first 20 s, by how many other listeners held them
           3 s before their moment (0: the swarm did not have them; 1: only their first holder).
- holders  every other part due in the run's first 70 s: how many listeners held it from 20 s
           before its moment to 3 s after, and how many of those listening had it in time.
- uplinks  per 10 s of the run's first minute, for the origin and each listener (by join
           order): asks it answered / asks it turned away (`503` and other failures).

Everything but `silence` needs the listeners' debug logs: run the harness with
`ALLUVIUM_LOG=info,alluvium_swarm::download=debug` in the environment.

Written by hand (standard library only): it parses our own log lines, which no tool knows.
"""
import collections
import glob
import os
import re
import sys
from datetime import datetime

FETCHING = re.compile(
    r"(\S+)\s+INFO entry\{title=([^}]*)\}: fetching .* parts=(\d+) starts_in_ms=(-?\d+)")
EVENT = re.compile(
    r"(\S+) DEBUG entry\{title=([^}]*)\}: (ask|got|failed) id=(\d+)(.*)")
SERVING = re.compile(r"\S+\s+INFO serving peers addr=(\S+)")
PEER = re.compile(r"from=Peer\(([^)]*)\)")


def seconds(stamp):
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def median_p90(values):
    v = sorted(values)
    n = len(v)
    median = v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2
    return median, v[min(n - 1, 9 * n // 10)]


class Listener:
    """One listener's log: when it joined, its entries' schedules, its asks and answers."""

    def __init__(self, index, path):
        self.index = index
        self.joined = None
        self.entries = {}  # title -> (start time, seconds per part, parts)
        self.got = {}  # (title, part) -> (time, source)
        self.asks = []  # (asked, answered, from origin, ok, failure, peer address or "origin")
        self.addr = None
        pending = {}
        with open(path, errors="replace") as f:
            for line in f:
                m = SERVING.match(line)
                if m:
                    self.addr = m.group(1)
                    continue
                m = FETCHING.match(line)
                if m:
                    t, title, parts, starts_in = m.groups()
                    t, parts = seconds(t), int(parts)
                    self.joined = t if self.joined is None else min(self.joined, t)
                    start = t + int(starts_in) / 1000
                    self.entries.setdefault(title, (start, 60.0 / parts, parts))
                    continue
                m = EVENT.match(line)
                if not m:
                    continue
                t, title, kind, ident, rest = m.groups()
                t, key = seconds(t), (title, ident)
                if kind == "ask":
                    peer = PEER.search(rest)
                    pending[key] = (t, "from=Origin" in rest, peer.group(1) if peer else "origin")
                    continue
                asked = pending.pop(key, None)
                if kind == "got":
                    first = int(re.search(r"first=(\d+)", rest).group(1))
                    count = int(re.search(r"count=(\d+)", rest).group(1))
                    source = "origin" if "from=Origin" in rest else "peer"
                    for p in range(first, first + count):
                        self.got.setdefault((title, p), (t, source))
                if asked:
                    failure = re.search(r"failure=(\w+)", rest)
                    self.asks.append((asked[0], t, asked[1], kind == "got",
                                      failure.group(1) if failure else "", asked[2]))

    def due(self, title, part):
        start, per, _ = self.entries[title]
        return start + part * per


def listeners(run):
    out = []
    for path in glob.glob(os.path.join(run, "logs", "listener*.log")):
        index = int(re.search(r"listener(\d+)\.log$", path).group(1))
        listener = Listener(index, path)
        if listener.joined is not None:
            out.append(listener)
    if not any(l.asks for l in out):
        sys.exit(f"{run}: the listeners' logs have no asks: run the harness with "
                 "ALLUVIUM_LOG=info,alluvium_swarm::download=debug")
    return sorted(out, key=lambda l: l.index)


def parts_heard(listener, seconds_from_join=(2, 120)):
    """(title, part, due) for the parts due in the listener's time, head and tail excluded."""
    for title, (start, per, parts) in listener.entries.items():
        for p in range(2, parts - 1):
            due = start + p * per
            if listener.joined + seconds_from_join[0] <= due <= listener.joined + seconds_from_join[1]:
                yield title, p, due


def silence(run, _):
    per = {}
    for path in glob.glob(os.path.join(run, "clients", "*.metrics")):
        index = int(os.path.basename(path).split(".")[0])
        for line in open(path):
            if line.startswith("alluvium_stall_seconds_total"):
                per[index] = float(line.split()[1])
    if not per:
        print("silence: no clients/*.metrics")
        return
    values = sorted(per.values())
    print("silence heard per listener, by join order:",
          " ".join(f"{per[i]:.0f}" for i in sorted(per)))
    print(f"  min {values[0]:.0f} s, median {median_p90(values)[0]:.0f} s, max {values[-1]:.0f} s")


def ontime(_, ls):
    buckets = collections.defaultdict(lambda: [0, 0, 0])
    for l in ls:
        for title, p, due in parts_heard(l):
            got = l.got.get((title, p))
            b = buckets[int((due - l.joined) // 20) * 20]
            b[0 if got and got[0] <= due - 0.5 else 1 if got else 2] += 1
    print("listener's time   on time  late  never")
    for start in sorted(buckets):
        on, late, never = buckets[start]
        n = on + late + never
        print(f"{start:4d}-{start + 20:3d} s   {on / n:7.0%} {late / n:5.0%} {never / n:6.0%}  (n={n})")


def origin(_, ls):
    t0 = min(l.joined for l in ls)
    copies = collections.defaultdict(list)
    for l in ls:
        for (title, p), (t, source) in l.got.items():
            if source == "origin":
                copies[(title, p)].append((t - t0, l.index))
    entries = {}
    for l in ls:
        entries.update(l.entries)
    print("times in s from the first listener's start; L<i>@<t>: listener i took it from the origin")
    for title in sorted(entries, key=lambda k: entries[k][0]):
        start, per, parts = entries[title]
        print(f"{title}: starts at {start - t0:.1f}")
        for p in range(parts):
            if (title, p) in copies:
                takes = " ".join(f"L{i}@{t:.1f}" for t, i in sorted(copies[(title, p)]))
                print(f"  part {p:3d} due {start + p * per - t0:6.1f}: {takes}")


def latency(_, ls):
    t0 = min(l.joined for l in ls)
    ok = collections.defaultdict(list)
    failed = collections.Counter()
    for l in ls:
        for asked, answered, from_origin, good, failure, _ in l.asks:
            key = (int((asked - t0) // 15) * 15, "origin" if from_origin else "peer")
            if good:
                ok[key].append(answered - asked)
            else:
                failed[(key, failure)] += 1
    print("asked at (s)  source  answers  median s  p90 s  failures")
    for key in sorted(set(ok) | {k for k, _ in failed}):
        fails = ", ".join(f"{why} {n}" for (k, why), n in sorted(failed.items()) if k == key)
        if ok[key]:
            med, p90 = median_p90(ok[key])
            print(f"{key[0]:10d}  {key[1]:6s} {len(ok[key]):8d} {med:9.2f} {p90:6.2f}  {fails}")
        else:
            print(f"{key[0]:10d}  {key[1]:6s} {0:8d} {'-':>9} {'-':>6}  {fails}")


def missed(_, ls):
    holders = collections.Counter()
    for l in ls:
        for title, p, due in parts_heard(l, (2, 20)):
            mine = l.got.get((title, p))
            if mine and mine[0] <= due - 0.5:
                continue
            n = sum(1 for o in ls if o is not l and o.got.get((title, p), (due,))[0] <= due - 3)
            holders[min(n, 10)] += 1
    print("parts missed in a listener's first 20 s, by other listeners holding them 3 s before due:")
    for n in sorted(holders):
        print(f"  held by {n:2d}{'+' if n == 10 else ' '}: {holders[n]}")


def holders(_, ls):
    """Every other part due in the run's first 70 s: how many listeners held it from 20 s
    before its moment to 3 s after, and how many of those who were listening then had it
    0.5 s before its moment."""
    t0 = min(l.joined for l in ls)
    ref = ls[0]
    rows = sorted((start + p * per, title, p)
                  for title, (start, per, parts) in ref.entries.items()
                  for p in range(2, parts - 1)
                  if t0 - 2 <= start + p * per <= t0 + 70)
    print("due s  entry:part  from origin  holders at due -20 -10 -5 -3 -1 0 +3   on time")
    for due, title, p in rows[::2]:
        wanting = [l for l in ls if l.joined + 2 <= due]
        gots = [l.got.get((title, p)) for l in ls]
        held = [sum(1 for g in gots if g and g[0] <= due + dt) for dt in (-20, -10, -5, -3, -1, 0, 3)]
        on = sum(1 for l in wanting if l.got.get((title, p), (due,))[0] <= due - 0.5)
        origin = sum(1 for g in gots if g and g[1] == "origin")
        print(f"{due - t0:6.1f}  {title[-8:]:>8}:{p:<3d} {origin:6d}       "
              + " ".join(f"{h:3d}" for h in held) + f"   {on}/{len(wanting)}")


def uplinks(_, ls):
    t0 = min(l.joined for l in ls)
    name = {l.addr: f"L{l.index}" for l in ls if l.addr}
    name["origin"] = "origin"
    counts = collections.Counter()
    for l in ls:
        for asked, _, _, ok, _, server in l.asks:
            w = int((asked - t0) // 10)
            if 0 <= w < 6:
                counts[(name.get(server, server), w, ok)] += 1
    print("asks answered / turned away, by when they were asked (s from the first join)")
    print("server  " + " ".join(f"{10 * w:>2d}-{10 * w + 10:<4d}" for w in range(6)))
    for server in ["origin"] + [f"L{l.index}" for l in ls]:
        cells = " ".join(f"{counts[(server, w, True)]:3d}/{counts[(server, w, False)]:<3d}"
                         for w in range(6))
        print(f"{server:7s} {cells}")


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0 if len(sys.argv) > 1 else 2)
    run = sys.argv[1]
    what = sys.argv[2] if len(sys.argv) > 2 else "all"
    reports = {"silence": silence, "ontime": ontime, "origin": origin,
               "latency": latency, "missed": missed, "holders": holders, "uplinks": uplinks}
    if what != "all" and what not in reports:
        sys.exit(f"unknown report {what!r}: one of {', '.join(reports)}, all")
    if not os.path.isdir(run):
        sys.exit(f"{run}: not a directory")
    if what == "silence":
        silence(run, None)
        return
    if what == "all":
        silence(run, None)
    ls = listeners(run)
    for name, report in reports.items():
        if name != "silence" and what in ("all", name):
            print()
            report(run, ls)


if __name__ == "__main__":
    main()
