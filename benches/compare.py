#!/usr/bin/env python3
"""cairn against restic and borg on the same data, in the same run.

Phases, for each tool: first backup (cold page cache), no-change backup,
backup after a mutation of the data, full restore (cold cache) and check
with a full data read. For each phase: wall time, CPU time (user + sys)
and peak RSS; then ratios and repository sizes. Run through
`benches/compare.sh`, which installs restic and borg and builds cairn.

The machine is shared and noisy: compare tools within one run, never
absolute times across runs.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

TOOLS = ["cairn", "restic", "borg"]
PHASES = ["backup", "nochange", "mutated", "restore", "check"]


def drop_caches():
    """Cold page cache, when allowed (root)."""
    subprocess.run(["sync"], check=True)
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def timed(cmd, env, cwd=None):
    """Run under GNU time; return wall, cpu, rss_kib."""
    fmt = "%e %U %S %M"
    out_file = tempfile.NamedTemporaryFile(delete=False)
    out_file.close()
    full = ["/usr/bin/time", "-o", out_file.name, "-f", fmt] + cmd
    proc = subprocess.run(full, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    with open(out_file.name) as f:
        line = f.read().strip().splitlines()[-1]
    os.unlink(out_file.name)
    if proc.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    wall, user, system, rss = line.split()
    return {"wall": float(wall), "cpu": float(user) + float(system), "rss_kib": int(rss)}


def du(path):
    return int(subprocess.run(["du", "-sb", path], capture_output=True, text=True,
                              check=True).stdout.split()[0])


class Tool:
    def __init__(self, name, work, cairn_bin, password_file):
        self.name = name
        self.repo = os.path.join(work, f"repo-{name}")
        self.env = dict(os.environ)
        self.env.update({
            "CAIRN_REPOSITORY": self.repo,
            "CAIRN_PASSWORD_FILE": password_file,
            "CAIRN_CACHE_DIR": os.path.join(work, "cache-cairn"),
            "RESTIC_REPOSITORY": self.repo,
            "RESTIC_PASSWORD_FILE": password_file,
            "RESTIC_CACHE_DIR": os.path.join(work, "cache-restic"),
            "BORG_REPO": self.repo,
            "BORG_PASSCOMMAND": f"cat {password_file}",
            "BORG_BASE_DIR": os.path.join(work, "borg-base"),
            "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes",
            "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes",
        })
        self.cairn = cairn_bin
        self.n = 0

    def init(self):
        cmd = {
            "cairn": [self.cairn, "init", "-q"],
            "restic": ["restic", "init", "--repository-version", "2", "-q"],
            "borg": ["borg", "init", "-e", "repokey"],
        }[self.name]
        subprocess.run(cmd, env=self.env, check=True, stdout=subprocess.DEVNULL)

    def backup(self, data):
        self.n += 1
        cmd = {
            "cairn": [self.cairn, "backup", "-q", data],
            "restic": ["restic", "backup", "-q", data],
            "borg": ["borg", "create", "--compression", "zstd,3", f"::snap{self.n}", data],
        }[self.name]
        return timed(cmd, self.env)

    def restore(self, target):
        os.makedirs(target)
        if self.name == "cairn":
            return timed([self.cairn, "restore", "-q", "latest", "--target", target], self.env)
        if self.name == "restic":
            return timed(["restic", "restore", "-q", "latest", "--target", target], self.env)
        return timed(["borg", "extract", f"::snap{self.n}"], self.env, cwd=target)

    def check(self):
        cmd = {
            "cairn": [self.cairn, "check", "-q", "--read-data"],
            "restic": ["restic", "check", "-q", "--read-data"],
            "borg": ["borg", "check", "--verify-data"],
        }[self.name]
        return timed(cmd, self.env)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/cairn-bench")
    ap.add_argument("--cairn", required=True, help="path to the release cairn binary")
    ap.add_argument("--gen-tree", required=True, help="path to the gen-tree binary")
    ap.add_argument("--gib", type=float, default=1.0, help="approximate data size")
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--json", help="write results here")
    args = ap.parse_args()

    tools = args.tools.split(",")
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    data = os.path.join(args.work, "data")
    password_file = os.path.join(args.work, "password")
    with open(password_file, "w") as f:
        f.write("benchmark password\n")

    # About 0.16 GiB of small files and 0.84 GiB in 24 large files per GiB:
    # text (compressible), random (not), and zero runs with data around them.
    small = int(20000 * args.gib)
    large_size = 36 << 20
    large = max(3, int(24 * args.gib))
    subprocess.run([args.gen_tree, data, "--small", str(small), "--large", str(large),
                    "--large-size", str(large_size), "--seed", "1"], check=True)
    size = du(data)
    cold = drop_caches()
    print(f"data set: {size / 2**30:.2f} GiB, {small + large + 30} files; "
          f"cold cache: {'yes' if cold else 'no (not root)'}", flush=True)

    results = {t: {} for t in tools}
    runners = {t: Tool(t, args.work, args.cairn, password_file) for t in tools}
    for t in tools:
        runners[t].init()
        drop_caches()
        results[t]["backup"] = runners[t].backup(data)
        results[t]["nochange"] = runners[t].backup(data)
        print(f"{t}: first backup {results[t]['backup']['wall']:.2f}s, "
              f"no-change {results[t]['nochange']['wall']:.2f}s", flush=True)
    subprocess.run([args.gen_tree, data, "--mutate", "--seed", "2"], check=True)
    for t in tools:
        drop_caches()
        results[t]["mutated"] = runners[t].backup(data)
        target = os.path.join(args.work, f"restore-{t}")
        drop_caches()
        results[t]["restore"] = runners[t].restore(target)
        if t == "cairn":
            restored = os.path.join(target, data.lstrip("/"))
            diff = subprocess.run(["diff", "-rq", "--no-dereference", data, restored],
                                  capture_output=True, text=True)
            if diff.returncode != 0:
                sys.exit(f"cairn's restore differs from the data:\n{diff.stdout[:2000]}")
        shutil.rmtree(target)
        drop_caches()
        results[t]["check"] = runners[t].check()
        results[t]["repo_bytes"] = du(runners[t].repo)
        print(f"{t}: done", flush=True)

    print()
    print(f"{'phase':<10} {'tool':<7} {'wall s':>8} {'cpu s':>8} {'peak RSS MiB':>13}")
    for p in PHASES:
        for t in tools:
            r = results[t][p]
            print(f"{p:<10} {t:<7} {r['wall']:>8.2f} {r['cpu']:>8.2f} {r['rss_kib'] / 1024:>13.1f}")
    print()
    ratios = {}
    for other in [t for t in tools if t != "cairn"]:
        print(f"cairn against {other} (speed: {other} time / cairn time, >1 means cairn is faster;"
              f" memory: cairn RSS / {other} RSS, <1 means cairn uses less)")
        ratios[other] = {}
        for p in PHASES:
            c, o = results["cairn"][p], results[other][p]
            speed = o["wall"] / max(c["wall"], 1e-3)
            mem = c["rss_kib"] / max(o["rss_kib"], 1)
            ratios[other][p] = {"speed": speed, "rss": mem}
            print(f"  {p:<10} speed {speed:5.2f}x   RSS {mem:5.2f}")
        size_ratio = results["cairn"]["repo_bytes"] / results[other]["repo_bytes"]
        ratios[other]["repo_size"] = size_ratio
        print(f"  repository size: cairn {results['cairn']['repo_bytes'] / 2**20:.1f} MiB, "
              f"{other} {results[other]['repo_bytes'] / 2**20:.1f} MiB (ratio {size_ratio:.3f})")
    if "restic" in tools:
        mb_s = size / 2**20 / results["cairn"]["backup"]["wall"]
        print(f"\ncairn first backup throughput: {mb_s:.0f} MiB/s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"data_bytes": size, "results": results, "ratios": ratios,
                       "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, f, indent=2)


if __name__ == "__main__":
    main()
