#!/usr/bin/env python3
"""Driver of benches/scale.sh: build synthetic repositories at several sizes
and time everyday operations on each, so growth shows as a curve.

Each size N builds N tiny snapshots over N/20 accounts (at most 5,000), 16
hosts; the `--blobs` sizes build one snapshot of B distinct 16-byte blobs.
Every command runs with its own cache directory; "first" is with an empty
cache, "again" is the next call. The password file's key uses the minimal
key-derivation cost, so only the repository's work shows.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


def run(cmd, env, check=True, stdout=subprocess.DEVNULL):
    """Wall seconds and peak RSS (MiB) of one command."""
    t0 = time.monotonic()
    p = subprocess.run(
        ["/usr/bin/time", "-f", "%M"] + cmd,
        env=env,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
    )
    wall = time.monotonic() - t0
    if check and p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr}")
    rss = int(p.stderr.strip().splitlines()[-1]) / 1024
    return wall, rss, p


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = args.work or tempfile.mkdtemp(prefix="cairn-scale-")
        os.makedirs(self.work, exist_ok=True)
        self.pw = os.path.join(self.work, "password")
        with open(self.pw, "w") as f:
            f.write("scale bench password\n")
        os.chmod(self.pw, 0o600)
        self.env = dict(os.environ, CAIRN_PASSWORD_FILE=self.pw)
        self.env.pop("CAIRN_REPOSITORY", None)

    def generate(self, name, accounts, snapshots, blobs=0):
        repo = os.path.join(self.work, name)
        shutil.rmtree(repo, ignore_errors=True)
        t0 = time.monotonic()
        cmd = [self.args.generator, repo, self.pw, "--accounts", str(accounts),
               "--snapshots", str(snapshots), "--blobs", str(blobs)]
        subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
        return repo, time.monotonic() - t0

    def cairn(self, repo, cache, *cmd, check=True, stdout=subprocess.DEVNULL):
        full = [self.args.cairn, "-q", "-r", repo, "--cache-dir", cache] + list(cmd)
        return run(full, self.env, check=check, stdout=stdout)

    def cache(self, tag):
        d = os.path.join(self.work, "cache-" + tag)
        shutil.rmtree(d, ignore_errors=True)
        return d

    def source(self):
        """A tiny mailbox to back up: /srv/mail/user00000 under the work dir."""
        src = os.path.join(self.work, "src", "user00000")
        os.makedirs(src, exist_ok=True)
        for i in range(5):
            with open(os.path.join(src, f"msg-{i}.eml"), "w") as f:
                f.write(f"message {i}\n" * 50)
        return src

    def backup_cost(self, repo, tag):
        """Wall time of a nightly backup of one account (the second one:
        with a parent), and of its first."""
        cache = self.cache(tag)
        src = self.source()
        flags = ["backup", "--account", "user00000", "--host", "mx00", src]
        first, _, _ = self.cairn(repo, cache, *flags)
        again, rss, _ = self.cairn(repo, cache, *flags)
        return first, again, rss


def sizes(text):
    return [int(x) for x in text.split(",") if x]


def fmt(t):
    return f"{t:.3f} s"


def scale_rows(b, counts):
    policy = os.path.join(b.work, "policy.toml")
    with open(policy, "w") as f:
        f.write("[default]\nkeep-daily = 7\nkeep-monthly = 3\n")
    # The baseline: a repository holding only the one account.
    alone, _ = b.generate("alone", 1, 20)
    _, alone_backup, _ = b.backup_cost(alone, "alone")
    rows = []
    for n in counts:
        accounts = max(1, min(5000, n // 20))
        repo, gen = b.generate(f"snaps-{n}", accounts, n)
        r = {"snapshots": n, "accounts": accounts, "generate_s": gen}
        first, again, rss = b.backup_cost(repo, f"backup-{n}")
        r["backup_first_s"], r["backup_s"], r["backup_rss_mib"] = first, again, rss
        r["backup_alone_s"] = alone_backup
        cache = b.cache(f"list-{n}")
        r["snapshots_first_s"], _, _ = b.cairn(repo, cache, "snapshots")
        r["snapshots_s"], r["snapshots_rss_mib"], _ = b.cairn(repo, cache, "snapshots")
        r["snapshots_json_s"], _, _ = b.cairn(repo, cache, "--json", "snapshots")
        r["account_s"], _, _ = b.cairn(repo, cache, "snapshots", "--account", "user00007")
        r["forget_s"], r["forget_rss_mib"], _ = b.cairn(
            repo, cache, "forget", "--policy", policy, "--dry-run")
        r["find_s"], r["find_rss_mib"], _ = b.cairn(repo, cache, "find", "msg-3.eml")
        r["check_s"], r["check_rss_mib"], _ = b.cairn(repo, cache, "check")
        rows.append(r)
        shutil.rmtree(repo, ignore_errors=True)
    return rows


def blob_rows(b, counts):
    rows = []
    for n in counts:
        repo, gen = b.generate(f"blobs-{n}", 1, 1, blobs=n)
        cache = b.cache(f"blobs-{n}")
        r = {"blobs": n, "generate_s": gen}
        r["cache_open_s"], r["cache_open_rss_mib"], _ = b.cairn(repo, cache, "cache", "rebuild")
        looked = subprocess.run(
            [b.args.generator, repo, b.pw, "--blobs", str(n), "--lookups", "200000",
             "--cache", cache], check=True, stdout=subprocess.PIPE, text=True)
        r.update({"lookup_" + k: v for k, v in json.loads(looked.stdout).items()})
        r["check_s"], r["check_rss_mib"], _ = b.cairn(repo, cache, "check")
        r["check_data_s"], r["check_data_rss_mib"], _ = b.cairn(repo, cache, "check", "--read-data")
        # Forget the bulk snapshot, then prune everything it held.
        _, _, out = b.cairn(repo, cache, "--json", "snapshots", "--account", "bulk",
                            stdout=subprocess.PIPE)
        bulk = json.loads(out.stdout)[0]["id"]
        b.cairn(repo, cache, "forget", "--force", bulk)
        r["prune_s"], r["prune_rss_mib"], _ = b.cairn(repo, cache, "prune")
        for k in ("check", "prune"):
            r[f"{k}_bytes_per_blob"] = r[f"{k}_rss_mib"] * 1024 * 1024 / n
        rows.append(r)
        shutil.rmtree(repo, ignore_errors=True)
    return rows


def index_rows(b, backups):
    """After `backups` backups (one index object each), the cost of opening
    the repository for a small command, with the cache warm and cold, then
    the same after a prune consolidated the index objects."""
    if backups <= 0:
        return []
    repo = os.path.join(b.work, "many-backups")
    shutil.rmtree(repo, ignore_errors=True)
    cache = b.cache("many-backups")
    b.cairn(repo, cache, "init", "--kdf-memory-kib", "64", "--kdf-iterations", "1")
    src = b.source()
    t0 = time.monotonic()
    for i in range(backups):
        with open(os.path.join(src, "counter"), "w") as f:
            f.write(f"{i}\n")
        b.cairn(repo, cache, "backup", "--account", "user00000", src)
    gen = time.monotonic() - t0
    rows = []
    for when in ("before prune", "after prune"):
        if when == "after prune":
            b.cairn(repo, cache, "prune")
        n = len(os.listdir(os.path.join(repo, "index")))
        warm, _, _ = b.cairn(repo, cache, "ls", "latest")
        cold_cache = b.cache("many-backups-cold")
        cold, rss, _ = b.cairn(repo, cold_cache, "ls", "latest")
        rows.append({"when": when, "backups": backups, "index_objects": n,
                     "generate_s": gen, "warm_s": warm, "cold_s": cold, "cold_rss_mib": rss})
    shutil.rmtree(repo, ignore_errors=True)
    return rows


def print_table(title, rows, cols):
    if not rows:
        return
    print(f"\n{title}\n")
    print("| " + " | ".join(c for c, _ in cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(f(r) for _, f in cols) + " |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cairn", required=True)
    ap.add_argument("--generator", required=True)
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--blobs", default="")
    ap.add_argument("--backups", type=int, default=1000,
                    help="backups for the index-object measurement (0: skip)")
    ap.add_argument("--work")
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args()
    b = Bench(args)
    snaps = scale_rows(b, sizes(args.sizes))
    blobs = blob_rows(b, sizes(args.blobs))
    indexes = index_rows(b, args.backups)
    print_table("Snapshots (second call unless said; backup = nightly backup with a parent)", snaps, [
        ("snapshots", lambda r: f"{r['snapshots']:,} / {r['accounts']:,} accounts"),
        ("backup (alone)", lambda r: f"{fmt(r['backup_s'])} ({fmt(r['backup_alone_s'])})"),
        ("`snapshots` first / again", lambda r: f"{fmt(r['snapshots_first_s'])} / {fmt(r['snapshots_s'])}"),
        ("`snapshots --account`", lambda r: fmt(r["account_s"])),
        ("`forget --policy --dry-run` (RSS)", lambda r: f"{fmt(r['forget_s'])} ({r['forget_rss_mib']:.0f} MiB)"),
        ("`find`", lambda r: fmt(r["find_s"])),
        ("`check` (RSS)", lambda r: f"{fmt(r['check_s'])} ({r['check_rss_mib']:.0f} MiB)"),
    ])
    print_table("Blobs", blobs, [
        ("blobs", lambda r: f"{r['blobs']:,}"),
        ("cache rebuild (RSS)", lambda r: f"{fmt(r['cache_open_s'])} ({r['cache_open_rss_mib']:.0f} MiB)"),
        ("cache open; random lookups", lambda r: f"{r['lookup_open_s'] * 1000:.1f} ms; {r['lookup_lookups_per_s'] / 1000:.0f}k/s"),
        ("check (RSS, bytes/blob)", lambda r: f"{fmt(r['check_s'])} ({r['check_rss_mib']:.0f} MiB, {r['check_bytes_per_blob']:.0f})"),
        ("check --read-data (RSS)", lambda r: f"{fmt(r['check_data_s'])} ({r['check_data_rss_mib']:.0f} MiB)"),
        ("prune (RSS, bytes/blob)", lambda r: f"{fmt(r['prune_s'])} ({r['prune_rss_mib']:.0f} MiB, {r['prune_bytes_per_blob']:.0f})"),
    ])
    print_table("Index objects (`ls latest`: cache warm, then a new cache)", indexes, [
        ("", lambda r: f"{r['backups']:,} backups, {r['when']}"),
        ("index objects", lambda r: f"{r['index_objects']:,}"),
        ("warm cache", lambda r: fmt(r["warm_s"])),
        ("new cache (RSS)", lambda r: f"{fmt(r['cold_s'])} ({r['cold_rss_mib']:.0f} MiB)"),
    ])
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"snapshots": snaps, "blobs": blobs, "indexes": indexes}, f, indent=1)
    if not args.work:
        shutil.rmtree(b.work, ignore_errors=True)


if __name__ == "__main__":
    main()
