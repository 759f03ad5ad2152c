#!/usr/bin/env python3
"""cairn sync against aws s3 sync and rclone sync, to the same S3 server.

A repository of about 1 GiB is made once (cairn backup of a generated
tree); each tool then copies that repository directory to a fresh bucket on
a fresh loopback moto_server (first sync), and runs again with nothing new
(no-change rerun, median of five). For each: wall time, CPU time (user + sys) and peak RSS
of the client, then ratios. After each first sync the bucket's object count
and bytes are compared with the repository directory, so a tool that copies
less cannot look faster. Run through `benches/sync.sh`.

The server runs on the same 2 cores as the client, and moto (Python) costs
far more per request than a production server: the ratios say how the
clients compare on equal terms, not what a real S3 endpoint would give.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

TOOLS = ["cairn", "aws", "rclone"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def timed(cmd, env):
    """Run under GNU time; return wall, cpu, rss_kib."""
    out_file = tempfile.NamedTemporaryFile(delete=False)
    out_file.close()
    full = ["/usr/bin/time", "-o", out_file.name, "-f", "%e %U %S %M"] + cmd
    start = time.perf_counter()
    proc = subprocess.run(full, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    with open(out_file.name) as f:
        line = f.read().strip().splitlines()[-1]
    os.unlink(out_file.name)
    if proc.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    wall, user, system, rss = line.split()
    # GNU time's wall clock has 10 ms steps; a rerun can take less.
    return {"wall": elapsed, "cpu": float(user) + float(system), "rss_kib": int(rss)}


def median_of(runs):
    runs = sorted(runs, key=lambda r: r["wall"])
    return runs[len(runs) // 2]


def tree_size(path):
    count = size = 0
    for root, _, files in os.walk(path):
        for name in files:
            count += 1
            size += os.path.getsize(os.path.join(root, name))
    return count, size


class Moto:
    """A fresh moto_server per tool: same empty state, bounded memory."""

    def __init__(self, work):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = open(os.path.join(work, f"moto-{self.port}.log"), "w")
        self.proc = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(self.endpoint + "/")
                break
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    sys.exit(f"moto_server did not start; see {self.log.name}")
                time.sleep(0.2)

    def cpu(self):
        """CPU seconds the server has used (user + sys, all threads)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        self.log.close()


def env_for(endpoint, work, password_file, repo):
    env = dict(os.environ)
    env.update({
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "CAIRN_REPOSITORY": repo,
        "CAIRN_PASSWORD_FILE": password_file,
        "CAIRN_CACHE_DIR": os.path.join(work, "cache-cairn"),
        "CAIRN_S3_ENDPOINT": endpoint,
        "CAIRN_S3_PATH_STYLE": "true",
        "CAIRN_S3_ALLOW_HTTP": "true",
        "RCLONE_CONFIG": "/dev/null",
    })
    # Plain HTTP on loopback: a CA bundle is irrelevant, and rclone refuses
    # to start with one set.
    env.pop("AWS_CA_BUNDLE", None)
    return env


def command(tool, endpoint, repo, bucket):
    if tool == "cairn":
        return [args_cairn, "sync", "-q", "--to", f"s3://{bucket}/repo"]
    if tool == "aws":
        return ["aws", "--endpoint-url", endpoint, "s3", "sync", "--only-show-errors",
                repo, f"s3://{bucket}/repo"]
    remote = (f":s3,provider=Other,endpoint='{endpoint}',access_key_id=bench,"
              f"secret_access_key=bench,force_path_style=true:{bucket}/repo")
    return ["rclone", "sync", "-q", repo, remote]


def bucket_contents(endpoint, env, bucket):
    out = subprocess.run(["aws", "--endpoint-url", endpoint, "s3api", "list-objects-v2",
                          "--bucket", bucket, "--prefix", "repo/", "--output", "json"],
                         env=env, capture_output=True, text=True, check=True).stdout
    objects = json.loads(out or "{}").get("Contents", [])
    return len(objects), sum(o["Size"] for o in objects)


def main():
    global args_cairn
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/cairn-sync-bench")
    ap.add_argument("--cairn", required=True)
    ap.add_argument("--gen-tree", required=True)
    ap.add_argument("--gib", type=float, default=2.0,
                    help="data to back up (the repository is about half of it)")
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--json")
    args = ap.parse_args()
    args_cairn = args.cairn
    tools = args.tools.split(",")

    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    data = os.path.join(args.work, "data")
    repo = os.path.join(args.work, "repo")
    password_file = os.path.join(args.work, "password")
    with open(password_file, "w") as f:
        f.write("benchmark password\n")
    subprocess.run([args.gen_tree, data, "--small", str(int(20000 * args.gib)),
                    "--large", str(max(3, int(24 * args.gib))), "--large-size", str(36 << 20),
                    "--seed", "1"], check=True)
    env = env_for("", args.work, password_file, repo)
    subprocess.run([args.cairn, "init", "-q"], env=env, check=True)
    subprocess.run([args.cairn, "backup", "-q", data], env=env, check=True)
    shutil.rmtree(data)
    objects, size = tree_size(repo)
    print(f"repository: {objects} objects, {size / 2**20:.1f} MiB")

    results = {"repository": {"objects": objects, "bytes": size}, "tools": {}}
    for tool in tools:
        moto = Moto(args.work)
        try:
            env = env_for(moto.endpoint, args.work, password_file, repo)
            bucket = f"bench-{tool}"
            subprocess.run(["aws", "--endpoint-url", moto.endpoint, "s3", "mb", f"s3://{bucket}"],
                           env=env, check=True, stdout=subprocess.DEVNULL)
            cmd = command(tool, moto.endpoint, repo, bucket)
            server_before = moto.cpu()
            first = timed(cmd, env)
            first["server_cpu"] = moto.cpu() - server_before
            got = bucket_contents(moto.endpoint, env, bucket)
            if got != (objects, size):
                sys.exit(f"{tool}: the bucket holds {got[0]} objects, {got[1]} bytes; "
                         f"the repository {objects}, {size}")
            rerun = median_of([timed(cmd, env) for _ in range(5)])
        finally:
            moto.stop()
        results["tools"][tool] = {"first": first, "rerun": rerun}
        for phase, r in (("first", first), ("rerun", rerun)):
            server = f"  server cpu {r['server_cpu']:6.2f} s" if "server_cpu" in r else ""
            print(f"{tool:7} {phase:6} wall {r['wall']:7.2f} s  cpu {r['cpu']:7.2f} s  "
                  f"rss {r['rss_kib'] / 1024:6.0f} MiB{server}", flush=True)

    if "cairn" in results["tools"]:
        c = results["tools"]["cairn"]
        print()
        for tool in tools:
            if tool == "cairn":
                continue
            t = results["tools"][tool]
            print(f"cairn vs {tool}: first sync {t['first']['wall'] / c['first']['wall']:.2f}x, "
                  f"no-change rerun {t['rerun']['wall'] / c['rerun']['wall']:.2f}x faster; "
                  f"peak RSS {c['first']['rss_kib'] / t['first']['rss_kib']:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
