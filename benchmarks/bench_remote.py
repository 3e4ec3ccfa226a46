"""Remote shard reads: lasium's reader against fsspec's HTTP filesystem, in one run, on a local server.

``lasium.shards.open_remote`` (standard-library HTTP, retries with backoff and resumes by byte range) is a
hand-written piece kept only with a measured reason; this compares it with the maintained library,
``fsspec.filesystem("http")`` (aiohttp), read the two ways people use it: ``fs.cat_file(url)`` (one GET) and
``fs.open(url).read()`` (a HEAD, then ranged GETs of ``block_size``). Both measures use a server on
127.0.0.1 in its own process (``tests/fault_server.py``), so the client's CPU is not shared with it:

* **read rate**: every shard of a set read whole by each client, ``--rounds`` rounds, the order of the
  clients rotated each round; MB/s per client (median of rounds) and the median per-round ratio;
* **faults survived**: ``--faulty-reads`` reads of one shard, each with one fault armed on the server just
  before it (in turn: a TCP reset half-way, a body cut half-way, HTTP 500, HTTP 503, and a reset half-way on a
  server that ignores ``Range``); a read survives when it returns the shard's exact bytes (sha256), fails
  when it raises, and is *wrong* when it returns other bytes without a word.

Needs the ``bench`` extra (``pip install -e ".[bench]"``: fsspec and aiohttp). Public API only. Example::

    python benchmarks/bench_remote.py --json-out results/bench_remote_cpu.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import numpy as np

import lasium
from lasium.shards import RetryPolicy, open_remote, read_manifest, write_manifest, write_shard
from lasium.tasks import TaskBatch

SERVER = Path(__file__).resolve().parents[1] / "tests" / "fault_server.py"
FAULTS = (  # (name, server, query): the fault armed before a faulty read
    ("reset half-way", "ranges", "kind=reset&after={half}"),
    ("body cut half-way", "ranges", "kind=truncate&after={half}"),
    ("HTTP 500 once", "ranges", "kind=status&status=500"),
    ("HTTP 503 once", "ranges", "kind=status&status=503"),
    ("reset half-way, Range ignored", "no-ranges", "kind=reset&after={half}"),
)


def write_bench_set(folder: Path, shards: int, tasks_per_shard: int, seed: int = 0) -> Path:
    """A set of random 28x28x1 5-way 1+5 tasks (the bundled GAN's shape; random pixels, so gzip cannot shrink it)."""
    ways, shots, queries = 5, 1, 5
    header = {
        "config": {
            "ways": ways,
            "shots": shots,
            "queries": queries,
            "image_shape": [28, 28, 1],
            "seed": seed,
            "tasks_per_shard": tasks_per_shard,
            "num_tasks": shards * tasks_per_shard,
            "save_latents": False,
            "strategy": "ro",
            "alpha": 0.2,
        },
        "generator": {"kind": "gan", "name": "bench", "latent_dim": 8, "weights_sha256": "ab" * 32},
        "source": None,
    }
    rng = np.random.default_rng(seed)
    entries = []
    for shard in range(shards):
        n = tasks_per_shard
        batch = TaskBatch(
            rng.integers(0, 256, (n, ways, shots, 28, 28, 1), dtype=np.uint8),
            rng.integers(0, 256, (n, ways, queries, 28, 28, 1), dtype=np.uint8),
            None,
            [{"anchors": [0] * ways} for _ in range(n)],
        )
        entries.append(write_shard(folder, "bench", shard, shard * n, batch, "wds", header, compression="none"))
    write_manifest(folder, header, entries)
    return folder


class Server:
    """``tests/fault_server.py`` serving ``root`` in a child process."""

    def __init__(self, root: Path, ranges: bool = True) -> None:
        cmd = [sys.executable, str(SERVER), str(root)] + ([] if ranges else ["--no-ranges"])
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            self.close()
            raise SystemExit(f"the fault server did not start ({SERVER})")

    def arm(self, path: str, query: str) -> None:
        with urlopen(f"{self.url}/__fault__?path={path}&{query}", timeout=10) as response:
            response.read()

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def clients(policy: RetryPolicy) -> dict[str, Callable[[str], bytes]]:
    import fsspec

    fs = fsspec.filesystem("http")  # one instance (and aiohttp session) for the whole run, as a user would keep it

    def lasium_read(url: str) -> bytes:
        stream = open_remote(url, policy)
        try:
            return stream.read()
        finally:
            stream.close()

    def fsspec_open(url: str) -> bytes:
        with fs.open(url, "rb") as f:
            return f.read()

    return {"lasium open_remote": lasium_read, "fsspec cat_file": fs.cat_file, "fsspec open().read()": fsspec_open}


def read_rates(
    server: Server, files: list[tuple[str, int, str]], readers: dict[str, Callable[[str], bytes]], rounds: int
) -> dict[str, Any]:
    names = list(readers)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}  # this process only: the server is another one
    total = sum(size for _, size, _ in files)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:  # rotate who goes first
            start, cpu_start = time.perf_counter(), time.process_time()
            for path, size, sha in files:
                data = readers[name](f"{server.url}/{path}")
                if len(data) != size or hashlib.sha256(data).hexdigest() != sha:
                    raise SystemExit(f"{name} read wrong bytes of {path} without a fault")
            seconds[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - cpu_start)
    base = names[0]
    out: dict[str, Any] = {"bytes_per_round": total, "clients": {}}
    for name in names:
        out["clients"][name] = {
            "mb_per_s_median": total / 1e6 / statistics.median(seconds[name]),
            "seconds": seconds[name],
            "cpu_ms_per_mb_median": 1e3 * statistics.median(cpu[name]) / (total / 1e6),
            "time_over_lasium_median": statistics.median(
                [b / a for a, b in zip(seconds[base], seconds[name], strict=True)]
            ),
        }
    return out


def survival(
    servers: dict[str, Server], file: tuple[str, int, str], readers: dict[str, Callable[[str], bytes]], reads: int
) -> dict[str, Any]:
    path, size, sha = file
    out: dict[str, Any] = {}
    for name, read in readers.items():
        outcomes: Counter[str] = Counter()
        by_fault: dict[str, Counter[str]] = {fault: Counter() for fault, _, _ in FAULTS}
        errors: Counter[str] = Counter()
        start = time.perf_counter()
        for i in range(reads):
            fault, which, query = FAULTS[i % len(FAULTS)]
            server = servers[which]
            server.arm(path, query.format(half=size // 2))
            try:
                data = read(f"{server.url}/{path}")
            except Exception as exc:  # noqa: BLE001 - any failure of the client is what is counted
                outcome = "failed"
                errors[type(exc).__name__] += 1
            else:
                outcome = "ok" if len(data) == size and hashlib.sha256(data).hexdigest() == sha else "wrong"
            outcomes[outcome] += 1
            by_fault[fault][outcome] += 1
            # a fault that the client did not consume (it never made that request) must not hit the next client
            server.arm(path, "kind=clear")
        out[name] = {
            "reads": reads,
            "survived": outcomes["ok"],
            "failed": outcomes["failed"],
            "wrong_bytes": outcomes["wrong"],
            "by_fault": {k: dict(v) for k, v in by_fault.items()},
            "errors": dict(errors),
            "seconds": time.perf_counter() - start,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", type=Path, help="a shard set folder (default: a random set of --shards shards)")
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--tasks-per-shard", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--faulty-reads", type=int, default=40)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()

    load_start = os.getloadavg()
    policy = RetryPolicy(tries=5, backoff=0.05, max_backoff=0.5)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.set or write_bench_set(Path(tmp) / "set", args.shards, args.tasks_per_shard)
        m = read_manifest(folder)
        root = Path(folder).resolve().parent
        files = [(f"{Path(folder).resolve().name}/{e.file}", e.bytes, e.sha256) for e in m.shards]
        servers = {"ranges": Server(root), "no-ranges": Server(root, ranges=False)}
        try:
            readers = clients(policy)
            for path, _, _ in files[:1]:  # warm up each client (imports, sessions)
                for read in readers.values():
                    read(f"{servers['ranges'].url}/{path}")
            rates = read_rates(servers["ranges"], files, readers, args.rounds)
            faults = survival(servers, files[0], readers, args.faulty_reads)
        finally:
            for server in servers.values():
                server.close()

    import aiohttp
    import fsspec

    result = {
        "benchmark": "bench_remote",
        "set": {"shards": len(files), "bytes": sum(size for _, size, _ in files), "given": str(args.set or "")},
        "rounds": args.rounds,
        "lasium_policy": {"tries": policy.tries, "backoff": policy.backoff, "max_backoff": policy.max_backoff},
        "versions": {
            "lasium": lasium.__version__,
            "fsspec": fsspec.__version__,
            "aiohttp": aiohttp.__version__,
            "python": platform.python_version(),
        },
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "load_average": {"start": list(load_start), "end": list(os.getloadavg())},
        "read_rate": rates,
        "faults": faults,
    }
    for name, r in rates["clients"].items():
        ratio = r["time_over_lasium_median"]
        print(
            f"{name:22s} {r['mb_per_s_median']:8.1f} MB/s  (its time / lasium's, median per round: {ratio:.2f}); "
            f"client CPU {r['cpu_ms_per_mb_median']:.2f} ms/MB"
        )
    for name, f in faults.items():
        print(
            f"{name:22s} survived {f['survived']}/{f['reads']} faulty reads (failed {f['failed']}, "
            f"wrong bytes {f['wrong_bytes']}) {f['errors'] or ''}"
        )
    print(f"load average {load_start[0]:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
