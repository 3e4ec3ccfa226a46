"""The hand-written shard I/O pieces against the maintained libraries, measured in one run (issue 28).

    python benchmarks/bench_tar_gzip.py --json-out results/bench_tar_gzip.json
    python benchmarks/bench_tar_gzip.py --quick

1. Tar writing: ``lasium.shards.wds_chunks`` (vectorized ustar headers, ``wds_encode.py``) against ``tarfile``
   (``USTAR_FORMAT``, mtime 0, owner 0/0, mode 0644, no user names) and ``webdataset.TarWriter(mtime=0, ...)``:
   tasks/s, and whether each gives the same bytes as lasium's writer (the pinned reference shards).
2. Tar reading: ``lasium.shards.tario.iter_tar_members`` (strict) against ``tarfile`` stream mode (``r|``) and
   webdataset's ``tar_file_iterator``: tasks/s over the same plain tar, and what each does with a tar cut short.
3. gzip reading: ``lasium.shards.gz.GzipReader`` (strict, streaming) against ``gzip.GzipFile(fileobj=...)``, both
   under ``iter_tar_members`` on the same ``.tar.gz`` (level 6): tasks/s, and what each does with a stream cut
   short, a bad CRC, trailing garbage, zero padding and two concatenated members.
4. The folder lock of ``lasium-gen`` (``lasium/generate/job/outdir.py``) against ``filelock``: acquire + release per
   second, and what ``filelock`` needs (a lock file) and offers (no shared/upgradable flock, no byte-range locks).

Tasks: 5-way 1+5-shot 28×28×1, stroke images (``bench_shards.stroke_images``). Rounds are interleaved (A, B, C,
A, B, C, ...) and the median is reported with ratios; the machine may be loaded (say so with the figures).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import platform
import statistics
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from bench_shards import make_batch

from lasium.shards import GzipReader, gzip_writer, iter_tar_members, task_metas_json, wds_chunks
from lasium.tasks import TaskBatch

MEMBERS = ("support.npy", "query.npy", "meta.json")


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def samples(batch: TaskBatch, metas: list[bytes]) -> list[dict[str, bytes]]:
    return [
        {
            "__key__": f"task-{i:09d}",
            "support.npy": npy_bytes(batch.support[i]),
            "query.npy": npy_bytes(batch.query[i]),
            "meta.json": metas[i],
        }
        for i in range(len(batch))
    ]


def write_lasium(batch: TaskBatch, metas: list[bytes]) -> bytes:
    out = io.BytesIO()
    for chunk in wds_chunks(batch, 0, metas):
        out.write(chunk)
    return out.getvalue()


def write_tarfile(batch: TaskBatch, metas: list[bytes]) -> bytes:
    """tarfile with lasium's fixed header fields; the npy encoding (``np.save``) is part of its cost."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for sample in samples(batch, metas):
            for member in MEMBERS:
                data = sample[member]
                info = tarfile.TarInfo(f"{sample['__key__']}.{member}")
                info.size, info.mtime, info.mode, info.uid, info.gid = len(data), 0, 0o644, 0, 0
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def write_webdataset(batch: TaskBatch, metas: list[bytes]) -> bytes:
    import webdataset as wds

    out = io.BytesIO()
    writer = wds.TarWriter(out, user="", group="", mode=0o644, mtime=0, encoder=False, format=tarfile.USTAR_FORMAT)
    for sample in samples(batch, metas):
        writer.write(sample)
    writer.close()
    return out.getvalue()


def read_lasium(data: bytes) -> int:
    return sum(1 for name, _ in iter_tar_members(io.BytesIO(data), "x") if name.endswith("meta.json"))


def read_tarfile(data: bytes) -> int:
    count = 0
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tar:
        for info in tar:
            f = tar.extractfile(info)
            if f is not None:
                f.read()
                count += info.name.endswith("meta.json")
    return count


def read_webdataset(data: bytes) -> int:
    from webdataset.tariterators import tar_file_iterator

    return sum(1 for s in tar_file_iterator(io.BytesIO(data)) if s["fname"].endswith("meta.json"))


def read_gzip_lasium(data: bytes) -> int:
    reader = GzipReader(io.BytesIO(data), "x")
    count = sum(1 for name, _ in iter_tar_members(reader, "x") if name.endswith("meta.json"))
    reader.finish()
    return count


def read_gzip_stdlib(data: bytes) -> int:
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
        count = sum(1 for name, _ in iter_tar_members(f, "x") if name.endswith("meta.json"))
        f.read()  # to the end: the CRC of the last member is checked there
    return count


def gzip_bytes(tar: bytes, level: int = 6) -> bytes:
    out = io.BytesIO()
    with gzip_writer(out, level) as w:
        w.write(tar)
    return out.getvalue()


def outcome(fn: Callable[[bytes], int], data: bytes, want: int) -> str:
    try:
        got = fn(data)
    except Exception as exc:  # the behaviour is what is measured
        return f"raises {type(exc).__name__}"
    return "reads all tasks" if got == want else f"returns {got} of {want} tasks silently"


def interleaved(fns: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """Median seconds per call of each function, called in turn ``rounds`` times."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        fn()  # warm-up
    for _ in range(rounds):
        for key, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def bench_lock(rounds: int, pairs: int) -> dict[str, Any]:
    from filelock import FileLock

    from lasium.generate import folder_lock

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        try:
            with FileLock(str(folder), timeout=1):
                on_folder = "locks the folder itself"
        except Exception as exc:  # what filelock does when asked to lock the folder, as the claim protocol does
            on_folder = f"raises {type(exc).__name__}: {str(exc)[:120]}"
        lock_file = folder / ".lasium-gen.lock"
        file_lock = FileLock(str(lock_file))

        def ours() -> None:
            for _ in range(pairs):
                with folder_lock(folder):
                    pass

        def theirs() -> None:
            for _ in range(pairs):
                with file_lock:
                    pass

        seconds = interleaved({"folder_lock": ours, "filelock": theirs}, rounds)
        leftover = sorted(p.name for p in folder.iterdir())
    return {
        "pairs_per_s": {k: pairs / v for k, v in seconds.items()},
        "ratiofolder_lock_vs_filelock": seconds["filelock"] / seconds["folder_lock"],
        "filelock_on_the_folder": on_folder,
        "files_left_in_the_folder_by_filelock": leftover,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="200 tasks, 3 rounds")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.tasks, args.rounds = 200, 3
    batch = make_batch(args.tasks, 5, 1, 5, 28, 0, "strokes", seed=0)
    metas = task_metas_json(batch, 0, {"strategy": "oc"})
    n = args.tasks
    result: dict[str, Any] = {
        "tasks": n,
        "rounds": args.rounds,
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "command": " ".join(sys.argv),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        },
    }

    ref = write_lasium(batch, metas)
    writes = {"lasium wds_chunks": write_lasium, "tarfile": write_tarfile, "webdataset.TarWriter": write_webdataset}
    seconds = interleaved({k: (lambda f=f: f(batch, metas)) for k, f in writes.items()}, args.rounds)
    result["tar_write"] = {
        k: {
            "tasks_per_s": n / seconds[k],
            "lasium_vs_this": seconds[k] / seconds["lasium wds_chunks"],
            "same_bytes_as_lasium": f(batch, metas) == ref,
        }
        for k, f in writes.items()
    }

    cut = ref[: len(ref) * 2 // 3]
    reads = {"lasium iter_tar_members": read_lasium, "tarfile r|": read_tarfile, "webdataset": read_webdataset}
    seconds = interleaved({k: (lambda f=f: f(ref)) for k, f in reads.items()}, args.rounds)
    result["tar_read"] = {
        k: {
            "tasks_per_s": n / seconds[k],
            "lasium_vs_this": seconds[k] / seconds["lasium iter_tar_members"],
            "tar_cut_at_two_thirds": outcome(f, cut, n),
        }
        for k, f in reads.items()
    }

    gz = gzip_bytes(ref)
    crc = bytearray(gz)
    crc[-8] ^= 1
    second = gzip_bytes(ref[:0] + b"")
    damaged = {
        "cut_at_two_thirds": gz[: len(gz) * 2 // 3],
        "cut_in_the_trailer": gz[:-4],
        "bad_crc": bytes(crc),
        "trailing_garbage": gz + b"not gzip",
        "zero_padding": gz + bytes(700),
        "two_members": gz + second,
    }
    greads = {"lasium GzipReader": read_gzip_lasium, "gzip.GzipFile": read_gzip_stdlib}
    seconds = interleaved({k: (lambda f=f: f(gz)) for k, f in greads.items()}, args.rounds)
    result["gzip_read"] = {
        k: {
            "tasks_per_s": n / seconds[k],
            "lasium_vs_this": seconds[k] / seconds["lasium GzipReader"],
            **{case: outcome(f, data, n) for case, data in damaged.items()},
        }
        for k, f in greads.items()
    }
    result["folder_lock"] = bench_lock(args.rounds, 2000 if not args.quick else 300)

    print(json.dumps(result, indent=2))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
