#!/usr/bin/env python3
"""forget + prune: cairn against restic on the same history, in one run.

A data directory receives a new generation of small unique files per
backup and loses the generation from `window` backups ago, so that old
snapshots hold data the newer ones no longer use. After `snapshots` backups
(default 100, with 2000 files each: 200,000 data blobs) both tools keep the
last `keep` snapshots and prune. Prints wall time, CPU time and peak RSS of
the forget + prune step and the ratios. Run through `benches/prune.sh`.
"""

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile


def timed(cmd, env):
    out = tempfile.NamedTemporaryFile(delete=False)
    out.close()
    proc = subprocess.run(["/usr/bin/time", "-o", out.name, "-f", "%e %U %S %M"] + cmd,
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    with open(out.name) as f:
        wall, user, system, rss = f.read().strip().splitlines()[-1].split()
    os.unlink(out.name)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return {"wall": float(wall), "cpu": float(user) + float(system), "rss_kib": int(rss)}


def du(path):
    return int(subprocess.run(["du", "-sb", path], capture_output=True, text=True,
                              check=True).stdout.split()[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cairn", required=True)
    ap.add_argument("--work", default="/tmp/cairn-prune-bench")
    ap.add_argument("--snapshots", type=int, default=100)
    ap.add_argument("--files", type=int, default=2000, help="new files per snapshot")
    ap.add_argument("--window", type=int, default=20, help="generations the data keeps")
    ap.add_argument("--keep", type=int, default=20, help="snapshots forget keeps")
    args = ap.parse_args()

    shutil.rmtree(args.work, ignore_errors=True)
    data = os.path.join(args.work, "data")
    os.makedirs(data)
    pw = os.path.join(args.work, "password")
    with open(pw, "w") as f:
        f.write("bench\n")
    env = dict(os.environ)
    env.update({
        "CAIRN_REPOSITORY": os.path.join(args.work, "repo-cairn"),
        "CAIRN_PASSWORD_FILE": pw,
        "CAIRN_CACHE_DIR": os.path.join(args.work, "cache-cairn"),
        "RESTIC_REPOSITORY": os.path.join(args.work, "repo-restic"),
        "RESTIC_PASSWORD_FILE": pw,
        "RESTIC_CACHE_DIR": os.path.join(args.work, "cache-restic"),
    })
    subprocess.run([args.cairn, "init", "-q"], env=env, check=True)
    subprocess.run(["restic", "init", "--repository-version", "2", "-q"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    rng = random.Random(7)
    backup_time = {"cairn": 0.0, "restic": 0.0}
    for gen in range(args.snapshots):
        d = os.path.join(data, f"gen-{gen:04d}")
        os.makedirs(d)
        for i in range(args.files):
            with open(os.path.join(d, f"f{i:05d}"), "wb") as f:
                f.write(rng.randbytes(200 + rng.randrange(400)))
        old = os.path.join(data, f"gen-{gen - args.window:04d}")
        if os.path.isdir(old):
            shutil.rmtree(old)
        for tool, cmd in (("cairn", [args.cairn, "backup", "-q", data]),
                          ("restic", ["restic", "backup", "-q", data])):
            backup_time[tool] += timed(cmd, env)["wall"]
        if gen % 10 == 9:
            print(f"{gen + 1} snapshots (cairn {backup_time['cairn']:.0f}s, "
                  f"restic {backup_time['restic']:.0f}s of backups so far)", flush=True)

    blobs = subprocess.run([args.cairn, "stats", "--json"], env=env, capture_output=True,
                           text=True, check=True).stdout
    import json
    stats = json.loads(blobs)
    print(f"cairn repository: {stats['data_blobs']} data blobs, {stats['tree_blobs']} tree blobs, "
          f"{stats['snapshots']} snapshots")
    policy = os.path.join(args.work, "policy.toml")
    with open(policy, "w") as f:
        f.write(f"[default]\nkeep-last = {args.keep}\n")
    sizes_before = {t: du(env[f"{t.upper()}_REPOSITORY"]) for t in ("cairn", "restic")}
    results = {
        # restic deletes at once; so does cairn here (by default it retires
        # packs and deletes them a day later, which frees the same space
        # with a second, shorter run).
        "cairn": timed([args.cairn, "forget", "-q", "--policy", policy, "--prune",
                        "--delete-after", "0"], env),
        "restic": timed(["restic", "forget", "-q", "--keep-last", str(args.keep), "--prune"], env),
    }
    sizes_after = {t: du(env[f"{t.upper()}_REPOSITORY"]) for t in ("cairn", "restic")}
    check = subprocess.run([args.cairn, "check", "-q", "--read-data"], env=env)
    if check.returncode != 0:
        sys.exit("cairn check failed after prune")

    print()
    print(f"{'tool':<8} {'wall s':>8} {'cpu s':>8} {'peak RSS MiB':>13} {'repo before':>12} {'repo after':>12}")
    for t in ("cairn", "restic"):
        r = results[t]
        print(f"{t:<8} {r['wall']:>8.2f} {r['cpu']:>8.2f} {r['rss_kib'] / 1024:>13.1f} "
              f"{sizes_before[t] / 2**20:>10.1f}Mi {sizes_after[t] / 2**20:>10.1f}Mi")
    speed = results["restic"]["wall"] / max(results["cairn"]["wall"], 1e-3)
    rss = results["cairn"]["rss_kib"] / results["restic"]["rss_kib"]
    print(f"\nforget + prune: cairn is {speed:.2f}x faster than restic; peak RSS ratio "
          f"cairn/restic {rss:.2f}")


if __name__ == "__main__":
    main()
