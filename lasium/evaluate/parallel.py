"""Scoring an evaluation's chunks in several processes on a CPU (``lasium-eval --workers N``).

Evaluation tasks are independent: each chunk of tasks is adapted and scored from the same meta-parameters. A
MAML learner's 50 adaptation steps on a 5-way Omniglot task are small convolutions that one core runs about as
fast as two intra-op threads would, and scoring 2 × 1000 of them takes an hour of one core, so on a CPU the way
to use the other cores is more processes. Each worker gets a contiguous run of the chunks still to score (about
the same number of tasks each), sets one intra-op thread, and sends every chunk's accuracies back as soon as it
has them; the parent writes them in place, so progress bars and ``--resume`` journals work as with one process.

Measured on a 2-core AMD EPYC with nothing else running (``results/bench_eval_workers_cpu.json``: 40 MAML
5-shot tasks, 50 steps, bf16, whole ``lasium-eval`` commands interleaved): 58.1 and 58.8 s with one process, 32.5
and 36.5 s with ``--workers 2`` (1.61-1.79x, start-up of the workers included), the same accuracy.

A chunk is computed exactly as a one-thread process computes it, so the scores do not depend on ``N``
(tests/test_eval_workers.py). Workers are spawned (not forked: OpenMP's threads do not survive a fork) and get
the learner and their slices of the episodes from this process; nothing is read back from disk.
"""

from __future__ import annotations

import queue as queue_errors
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from lasium.evaluate.protocol import Episodes
from lasium.train import MetaLearner

POLL_SECONDS = 1.0  # how often the parent checks that its workers are alive while it waits for a chunk


def share_out(chunks: list[tuple[int, int]], workers: int) -> list[list[tuple[int, int]]]:
    """``chunks`` (in order) cut into at most ``workers`` contiguous groups of about equal task counts."""
    total = sum(stop - start for start, stop in chunks)
    groups: list[list[tuple[int, int]]] = [[] for _ in range(min(workers, len(chunks)))]
    seen = 0
    for start, stop in chunks:
        # the group whose share of the tasks this chunk's first task falls in
        groups[min(len(groups) - 1, seen * len(groups) // max(total, 1))].append((start, stop))
        seen += stop - start
    return [g for g in groups if g]


def _score_chunks(
    learner: MetaLearner,
    support: np.ndarray,
    query: np.ndarray,
    perm: np.ndarray,
    offset: int,
    chunks: list[tuple[int, int]],
    steps: int | None,
    lr: float | None,
    precision: str,
    results: Any,  # the spawn context's Queue
) -> None:
    """A worker: score ``chunks`` (task indices; the arrays start at task ``offset``) and put each chunk's
    ``(start, stop, accuracies)`` on ``results``; an error is put as ``("error", message)``."""
    try:
        from lasium.evaluate.scoring import chunk_accuracy
        from lasium.precision import autocast_factory
        from lasium.runtime import keep_freed_memory
        from lasium.tasks import to_device

        torch.set_num_threads(1)
        keep_freed_memory()  # a process that runs one loop, as lasium-eval itself
        cpu = torch.device("cpu")
        learner = learner.to(cpu).eval()
        autocast = autocast_factory(precision, cpu)
        s_all, q_all, p_all = torch.from_numpy(support), torch.from_numpy(query), torch.from_numpy(perm)
        for start, stop in chunks:
            a, b = start - offset, stop - offset
            s, sl, q, ql = to_device(s_all[a:b], q_all[a:b], p_all[a:b], cpu)
            acc = chunk_accuracy(learner, s, sl, q, ql, steps=steps, lr=lr, autocast=autocast)
            results.put((start, stop, acc.double().numpy()))
    except BaseException as e:  # noqa: BLE001  # reported by the parent, which stops the others
        results.put(("error", f"{type(e).__name__}: {e}"))


def score_chunks_in_processes(
    learner: MetaLearner,
    episodes: Episodes,
    chunks: list[tuple[int, int]],
    *,
    workers: int,
    steps: int | None,
    lr: float | None,
    precision: str,
    on_chunk: Callable[[int, int, np.ndarray], None],
) -> None:
    """Score ``chunks`` of ``episodes`` in ``workers`` spawned processes; ``on_chunk(start, stop, accuracies)`` is
    called in this process for each chunk as it arrives (in no fixed order). A worker's error, or a worker that
    dies, stops all of them and raises :class:`RuntimeError`."""
    ctx = torch.multiprocessing.get_context("spawn")
    results = ctx.Queue()
    learner = learner.cpu().eval()
    procs = []
    groups = share_out(chunks, workers)
    try:
        for group in groups:
            lo, hi = group[0][0], group[-1][1]
            args = (
                learner,
                np.ascontiguousarray(episodes.support[lo:hi]),
                np.ascontiguousarray(episodes.query[lo:hi]),
                np.ascontiguousarray(episodes.perm[lo:hi]),
                lo,
                group,
                steps,
                lr,
                precision,
                results,
            )
            proc = ctx.Process(target=_score_chunks, args=args, daemon=True)
            proc.start()
            procs.append(proc)
        left = len(chunks)
        while left:
            try:
                message = results.get(timeout=POLL_SECONDS)
            except queue_errors.Empty:
                dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(f"an evaluation worker stopped with exit code {dead[0]}") from None
                continue
            if message[0] == "error":
                raise RuntimeError(f"an evaluation worker failed: {message[1]}")
            start, stop, acc = message
            on_chunk(start, stop, acc)
            left -= 1
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        for proc in procs:
            proc.join()
        results.close()


__all__ = ["score_chunks_in_processes", "share_out"]
