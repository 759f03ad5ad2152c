#!/usr/bin/env python3
"""Same-round ratios (other tool's wall time / cairn's) per step, from run.sh's results.tsv,
and the machine's limits measured in the same round (run.sh limit N)."""
import csv, sys
from collections import defaultdict
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
wall, rss = defaultdict(dict), defaultdict(dict)
for r in rows:
    wall[(r["run"], r["step"])][r["tool"]] = float(r["wall_s"])
    rss[(r["run"], r["step"])][r["tool"]] = int(r["maxrss_kb"]) // 1024
steps = ["backup1", "backup2", "backup3", "restore", "check"]
names = {"backup1": "first backup", "backup2": "no-change backup", "backup3": "after mutation",
         "restore": "full restore", "check": "check, all data"}
limits = {"read-tar": "cold read, tar -c | cat", "read-par": "cold read, 8 parallel cats",
          "walk": "cold metadata walk, find", "unpack": "tar -x onto the disk + sync",
          "repo-read": "cold read of cairn's repository"}
# Which limit bounds which step from below.
bound = {"backup1": "read-par", "backup2": "walk", "restore": "unpack", "check": "repo-read"}
runs = sorted({r["run"] for r in rows})
for run in runs:
    print(f"round {run}")
    for s in steps:
        w = wall.get((run, s), {})
        if "cairn" not in w:
            continue
        tools = [t for t in sorted(w) if t not in ("cairn", "limit")]
        parts = [f"{t} {w[t]:.2f}s ({w[t]/w['cairn']:.2f}x)" for t in tools]
        m = rss[(run, s)]
        lim = wall.get((run, bound.get(s, "")), {}).get("limit")
        tail = f" | limit {lim:.2f}s ({bound[s]})" if lim is not None else ""
        print(f"  {names[s]:18s} cairn {w['cairn']:.2f}s, {m['cairn']} MiB | " + " | ".join(parts)
              + " | RSS " + ", ".join(f"{t} {m[t]}" for t in tools) + tail)
    for s, label in limits.items():
        lim = wall.get((run, s), {}).get("limit")
        if lim is not None:
            print(f"  limit: {label:34s} {lim:.2f}s")
