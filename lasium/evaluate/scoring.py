"""Scoring a learner on evaluation episodes: adaptation vmapped over chunks of tasks, never one task at a time.

For each chunk of T tasks the support sets go to the device as one (T, N·K_tr, C, H, W) tensor; the learner's
``adapt_tasks`` (``torch.func.vmap`` of its per-task ``adapt``) turns them into T sets of task parameters and
``predict_tasks`` scores the T query sets. For MAML that is ``adapt_steps`` SGD steps of ``adapt_lr`` on each
task's support loss (Finn et al., ICML 2017); batch norm always normalises with the statistics of the batch
it is given (the task's support set, then its query set), as in the MAML reference code. For ProtoNets
(Snell et al., NeurIPS 2017) ``adapt`` only computes class means and ``predict`` is the negative squared
Euclidean distance to them: nearest prototype, no adaptation.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable

import numpy as np
import torch
from tqdm import tqdm

from lasium.evaluate.protocol import Episodes
from lasium.precision import Autocast
from lasium.tasks import to_device
from lasium.train import MetaLearner, inner_loop_options

# Tasks per vmapped call. A 5-way 5-shot MAML task at 28×28 keeps ~50 MB of activations per inner step
# (25 images × ~2 MB); on a GPU 250 tasks (~13 GB) keep it busy. On a CPU small chunks win: once a chunk's
# activations leave the caches every step slows down. benchmarks/bench_eval.py, one thread of a 2-core AMD EPYC
# (fp32, MAML, 10 steps): chunk 2 vs 16 ran 1.27x (1-shot) and 1.69x (5-shot) faster; and one task at a time,
# which skips vmap altogether (MetaLearner.adapt_tasks), 1.24x / 1.12x faster than chunk 2 (ProtoNets: 1.12x /
# 0.96x). (A chunk that does not fit in GPU memory is halved, see score_episodes.)
DEFAULT_CHUNK = {"cuda": 250, "cpu": 1}


def default_chunk(device: torch.device) -> int:
    return DEFAULT_CHUNK["cuda" if device.type == "cuda" else "cpu"]


def chunk_accuracy(
    learner: MetaLearner,
    support: torch.Tensor,
    support_labels: torch.Tensor,
    query: torch.Tensor,
    query_labels: torch.Tensor,
    *,
    steps: int | None,
    lr: float | None,
    autocast: Autocast = contextlib.nullcontext,
) -> torch.Tensor:
    """Query accuracy (T,) of T tasks on the device, adapted together (vmapped)."""
    with torch.no_grad():
        # Detached copies: the inner ``grad`` transform still differentiates the support loss, but no graph
        # reaches the meta-parameters, so nothing accumulates across the 50 steps.
        params = {k: v.detach() for k, v in learner.meta_params().items()}
        with autocast():
            task_params = learner.adapt_tasks(support, support_labels, params, **inner_loop_options(learner, steps, lr))
            logits = learner.predict_tasks(task_params, query)
        return (logits.argmax(-1) == query_labels).float().mean(-1)


def pending_chunks(total: int, chunk: int, scored: np.ndarray | None) -> list[tuple[int, int]]:
    """The chunks ``[start, stop)`` (boundaries at multiples of ``chunk``) that hold a task not scored yet (nan in
    ``scored``; every chunk when ``scored`` is None)."""
    bounds = [(start, min(start + chunk, total)) for start in range(0, total, chunk)]
    if scored is None:
        return bounds
    return [(a, b) for a, b in bounds if np.isnan(scored[a:b]).any()]


def score_episodes(
    learner: MetaLearner,
    episodes: Episodes,
    device: torch.device,
    *,
    steps: int | None = None,
    lr: float | None = None,
    chunk: int | None = None,
    autocast: Autocast = contextlib.nullcontext,
    progress: bool = False,
    desc: str | None = None,
    scored: np.ndarray | None = None,
    on_chunk: Callable[[np.ndarray], None] | None = None,
    workers: int = 1,
    precision: str = "fp32",
) -> np.ndarray:
    """Per-task query accuracy (n_tasks,) float64 of ``learner`` on ``episodes``, in chunks of ``chunk`` tasks.

    ``steps``/``lr`` are MAML's test-time inner loop (ignored by ProtoNets). A chunk that runs out of GPU
    memory is split in half and retried, so a too large ``chunk`` costs time, not the run.

    ``scored``: accuracies already computed (a resumed evaluation; nan = still to score); only the chunks with a
    task still to score are scored. ``on_chunk`` is called with the accuracies of all tasks (nan where not scored
    yet) after every chunk.

    ``workers`` > 1 (CPU only): the chunks are shared out among that many processes, one intra-op thread each
    (:mod:`lasium.evaluate.parallel`), with ``precision`` (a resolved ``bf16`` or ``fp32``) in place of
    ``autocast``; every chunk is computed as one process with one thread computes it.
    """
    learner.to(device).eval()
    chunk = int(chunk or default_chunk(device))
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1, got {chunk}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    total = len(episodes)
    out = np.full(total, np.nan)
    if scored is not None:
        kept = np.asarray(scored, np.float64)[:total]
        out[: len(kept)] = kept
    todo = pending_chunks(total, chunk, out)
    bar = tqdm(
        total=total,
        initial=total - sum(b - a for a, b in todo),
        unit="task",
        desc=desc,
        disable=not progress,
        dynamic_ncols=True,
        file=sys.stderr,
    )

    def done(start: int, stop: int, acc: np.ndarray) -> None:
        out[start:stop] = acc
        bar.update(stop - start)
        if on_chunk is not None:
            on_chunk(out)

    try:
        if workers > 1 and len(todo) > 1:
            from lasium.evaluate.parallel import score_chunks_in_processes

            score_chunks_in_processes(
                learner, episodes, todo, workers=workers, steps=steps, lr=lr, precision=precision, on_chunk=done
            )
        else:
            support = torch.from_numpy(episodes.support)
            query = torch.from_numpy(episodes.query)
            perm = torch.from_numpy(episodes.perm)
            while todo:
                start, stop = todo[0]
                try:
                    s, sl, q, ql = to_device(support[start:stop], query[start:stop], perm[start:stop], device)
                    acc = chunk_accuracy(learner, s, sl, q, ql, steps=steps, lr=lr, autocast=autocast)
                except torch.cuda.OutOfMemoryError:
                    if chunk == 1:
                        raise
                    chunk = max(1, chunk // 2)  # this chunk and every later one, split
                    todo = [(a, min(a + chunk, b)) for first, b in todo for a in range(first, b, chunk)]
                    torch.cuda.empty_cache()
                    bar.write(f"out of GPU memory: evaluating {chunk} tasks at a time")
                    continue
                todo.pop(0)
                done(start, stop, acc.double().cpu().numpy())
    finally:
        bar.close()
    return out
