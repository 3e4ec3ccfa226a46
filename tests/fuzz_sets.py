"""A fuzz campaign over shard sets (Hypothesis): mutate valid sets, feed them to every command that reads one.

Each case copies a small valid set (plain ``.tar``, ``.tar.gz``, HDF5, or ``.tar`` with latents; three shards of
two 5-way 1+1-shot 16×16 tasks), applies one to three mutations drawn by Hypothesis, and runs on it:

* the trainer's task stream in-process (``open_mixture`` → ``TaskStream``, with or without ``skip_corrupt``),
* ``lasium-shards verify``, ``inspect``, ``inspect --json``, ``preview`` and ``index``,
* for a sample of cases, the real ``lasium-train`` command (2 steps of ProtoNets on the CPU),

from outside the set's folder, from inside it (``.``, as the set's card says), through its ``manifest.json``, or
over HTTP (a server on 127.0.0.1). Mutations: raw bytes (flip, set, insert, delete, truncate, append, copy) of
shards, gzip streams and the tar inside them; tar headers (name, size, type, mode, link name, prefix, checksum,
magic) and members (drop, repeat, swap, rename, add); ``.npy`` headers (dtype, shape, order, version, length,
magic, a pickle payload); ``meta.json``; HDF5 attributes, datasets, links, groups, dtypes and storage; JSON fields
of manifests and sidecars (any JSON value, hostile names, deletions, raw damage: truncation, non-UTF-8, deep
nesting, huge numbers); files deleted, emptied, swapped, turned into folders, FIFOs or links out of the set. Some
cases *reseal* the set afterwards (sizes and sha256 in the manifest and sidecars rewritten to match the damaged
files), so the decoders meet damage the checksums vouch for. ``pipe:touch MARK`` style payloads are planted
among the values.

Invariants, checked for every command of every case:

1. no traceback: every command ends with exit 0, 1 (``verify`` only: bad shards) or 2, and no exception other
   than the project's one-line errors escapes the in-process stream;
2. each failure is one line: exit 2 prints exactly one ``error:`` line (besides ``note:``/``warning:`` lines),
   ``verify``'s exit 1 prints one ``bad:`` line per problem; no output carries control characters from the set;
3. no command executed: no file named like the planted mark appears anywhere;
4. nothing written outside the output folder: the case's whole tree is snapshotted around each command
   (``preview`` may write its PNG, ``lasium-train`` its run folder, ``index`` the set's ``manifest.json``);
5. no task from changed bytes reaches the learner: every task the stream yields is the original task of its
   index, byte for byte, unless the case resealed the set (then it must have the set's layout), and a preview
   that succeeds draws exactly the original tasks it names; ``verify`` says ok only when every listed shard
   has its recorded size and sha256;
6. no hang: a case ends within ``--timeout`` seconds (each case runs in a forked child process, so a crash or a
   hang is caught and reported as a broken invariant too).

The test suite runs a short derandomized campaign (``tests/test_fuzz_sets.py``); the long run is this script::

    nice -n 10 python tests/fuzz_sets.py --cases 10000 --seed 0
    python tests/fuzz_sets.py --replay failures/case-17.json      # rerun one reported case

It prints how many cases it tried and how many broke an invariant, with a reproducer (the case as JSON, which
``--replay`` takes) for each. The parts: ``fuzz_cases.py`` (base sets, Hypothesis strategies), ``fuzz_tar.py`` and
``fuzz_mutations.py`` (the mutations), ``fuzz_run.py`` (one case and its invariants), this module (the campaign).
This is a development tool, kept in ``tests/`` beside the tests that run it briefly (``test_fuzz_sets.py``) rather
than in the package: Hypothesis is a test dependency, and the campaign is white-box like the tests: it drives the
commands' click objects in forked children, the trainer's task stream, and forgets which shards were checked between
cases (internal modules that ``benchmarks/``, on public names only, may not import).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fuzz_cases import BASES, BaseSet, build_base, cases
from fuzz_run import run_case
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed


def run_isolated(case: dict, bases: dict[str, BaseSet], work: Path, base_url: str | None, timeout: float) -> list[str]:
    """``run_case`` in a forked child: a crash, a hang (``timeout``) or a stray exception is a broken invariant."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, report as JSON, leave without cleanup handlers
        os.close(read_fd)
        try:
            result = run_case(case, bases, work, base_url)
        except BaseException as exc:  # a bug of the fuzzer or of the code under test outside a command
            result = [f"fuzz case raised {type(exc).__name__}: {exc}\n{traceback.format_exc()[-1500:]}"]
        with os.fdopen(write_fd, "wb") as w:
            w.write(json.dumps(result).encode())
        os._exit(0)
    os.close(write_fd)
    chunks: list[bytes] = []

    def read_all() -> None:
        while True:
            data = os.read(read_fd, 1 << 20)
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.01)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        reader.join(1)
        os.close(read_fd)
        return [f"hang: the case did not finish within {timeout:.0f} s"]
    reader.join(5)
    os.close(read_fd)
    if os.WIFSIGNALED(status):
        return [f"crash: the case's process died of signal {os.WTERMSIG(status)}"]
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        return [f"crash: the case's process exited {os.WEXITSTATUS(status)} without a report"]


# ------------------------------------------------------------------------------------------------ the campaign


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def campaign_env(work: Path) -> Iterator[tuple[dict[str, BaseSet], str]]:
    """The base sets (built in ``work/bases``) and an HTTP server on 127.0.0.1 serving ``work``.

    Everything a case uses is imported here, once, so that each forked case starts warm.
    """
    import h5py  # noqa: F401
    import PIL.Image  # noqa: F401
    from click.testing import CliRunner

    import lasium.shards.card  # noqa: F401
    import lasium.shards.cli  # noqa: F401
    import lasium.train.cli  # noqa: F401
    import lasium.train.mixture  # noqa: F401
    import lasium.train.streaming  # noqa: F401
    import lasium.train.trainer  # noqa: F401

    bases_dir = work / "bases"
    bases = {key: build_base(key, bases_dir / key) for key in BASES}
    warm = CliRunner().invoke(  # one run of the trainer here, so forked cases do not each pay its first-call costs
        lasium.train.cli.main,
        ["--shards", str(bases_dir / "tar"), "--algo", "protonets", "--iterations", "1", "--meta-batch", "1"]
        + ["--workers", "0", "--val-dataset", "none", "--device", "cpu", "--quiet", "--shuffle-buffer", "2"]
        + ["--checkpoint-every", "0", "--out", str(bases_dir / "warm-run")],
    )
    assert warm.exit_code == 0, warm.output
    shutil.rmtree(bases_dir / "warm-run")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(work)))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield bases, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@dataclass
class Tally:
    cases: int = 0
    broken: list[tuple[dict, list[str]]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)


# Hypothesis profiles. Every case runs to the end (a broken invariant is recorded, not raised), so there is no
# shrinking; the reproducer is the case itself. No example database: the campaign writes nothing of its own.
_COMMON = {
    "deadline": None,
    "database": None,
    "phases": [Phase.explicit, Phase.generate],
    "suppress_health_check": list(HealthCheck),
    "print_blob": False,
}
settings.register_profile("lasium-fuzz-ci", max_examples=12, derandomize=True, **_COMMON)  # the test suite's run
settings.register_profile("lasium-fuzz-long", max_examples=10_000, derandomize=False, **_COMMON)  # this script


def run_campaign(
    n_cases: int | None = None,
    *,
    profile: str = "lasium-fuzz-long",
    seed: int | None = 0,
    work: Path,
    timeout: float = 300.0,
    on_case: Callable[[Tally, dict, list[str]], None] | None = None,
    env: tuple[dict[str, BaseSet], str] | None = None,
) -> Tally:
    """Run the Hypothesis profile's cases (``n_cases`` of them when given); every case runs (failures are recorded,
    not raised). ``seed`` fixes the cases of a profile that is not derandomized. ``env``: the base sets and server
    of a :func:`campaign_env` already open on ``work``."""
    tally = Tally()
    chosen = settings.get_profile(profile)
    if n_cases is not None:
        chosen = settings(chosen, max_examples=n_cases)
    with contextlib.nullcontext(env) if env is not None else campaign_env(work) as (bases, base_url):

        @chosen
        @given(case=cases)
        def one(case: dict) -> None:
            violations = run_isolated(case, bases, work, base_url, timeout)
            tally.cases += 1
            if violations:
                tally.broken.append((case, violations))
            if on_case is not None:
                on_case(tally, case, violations)
            for case_dir in work.glob("case-*"):
                shutil.rmtree(case_dir, ignore_errors=True)

        if seed is not None and not chosen.derandomize:
            one = hypothesis_seed(seed)(one)
        here = os.getcwd()
        try:
            one()
        finally:
            os.chdir(here)
    return tally


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=1000, help="How many mutated sets to try.")
    ap.add_argument("--seed", type=int, default=0, help="Hypothesis seed (the same seed draws the same cases).")
    ap.add_argument(
        "--timeout", type=float, default=300.0, help="Seconds one case may take before it counts as a hang."
    )
    ap.add_argument("--work", type=Path, default=None, help="Scratch folder [default: a temporary folder].")
    ap.add_argument(
        "--failures", type=Path, default=Path("fuzz-failures"), help="Where each failing case is saved as JSON."
    )
    ap.add_argument(
        "--replay", type=Path, default=None, help="Run one saved case (a JSON file) and print what it broke."
    )
    ap.add_argument("--every", type=int, default=100, help="Print progress every N cases.")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    work = args.work or Path(tempfile.mkdtemp(prefix="lasium-fuzz-"))
    work.mkdir(parents=True, exist_ok=True)
    work = work.resolve()
    if args.replay is not None:
        case = json.loads(args.replay.read_text())
        with campaign_env(work) as (bases, base_url):
            violations = run_isolated(case, bases, work, base_url, args.timeout)
        print(json.dumps(case))
        print("\n".join(violations) or "no invariant broken")
        sys.exit(1 if violations else 0)

    def progress(tally: Tally, case: dict, violations: list[str]) -> None:
        if violations:
            args.failures.mkdir(parents=True, exist_ok=True)
            saved = args.failures / f"case-{tally.cases}.json"
            saved.write_text(json.dumps(case) + "\n")
            print(
                f"case {tally.cases} broke {len(violations)} invariant(s); "
                f"reproduce: python {sys.argv[0]} --replay {saved}"
            )
            for v in violations:
                print("  " + v.replace("\n", "\n    "))
        if tally.cases % args.every == 0:
            elapsed = time.monotonic() - tally.started
            print(f"{tally.cases} cases, {len(tally.broken)} broke an invariant, {elapsed:.0f} s", flush=True)

    started = time.time()
    tally = run_campaign(args.cases, seed=args.seed, work=work, timeout=args.timeout, on_case=progress)
    elapsed = time.time() - started
    print(
        f"tried {tally.cases} cases (seed {args.seed}) in {elapsed:.0f} s: {len(tally.broken)} broke an invariant"
        + (f" (reproducers in {args.failures}/)" if tally.broken else "")
    )
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if tally.broken else 0)


if __name__ == "__main__":
    main()
