"""Shard writers for the generation job: in the main process, or a pool of writer processes.

The device loop hands over one finished shard at a time (uint8 images, optional float16 latents,
small per-task metas). Encoding (tar/HDF5), hashing, fsync and rename run in writer processes so they
overlap generation. Images travel through shared-memory slots (one shard each): the main process
copies a shard into a free slot and sends only the slot number and the metas; when no slot is free it
waits, which bounds the memory in flight. A writer that fails (a full disk, say) reports the error and
the main process re-raises it (ENOSPC stays an ``OSError`` with that errno).
"""

from __future__ import annotations

import ctypes
import errno as errno_mod
import multiprocessing as mp
import queue
import signal
import sys
import traceback
from dataclasses import dataclass
from multiprocessing import shared_memory
from pathlib import Path
from typing import Any, cast

import numpy as np

import lasium.errors as lasium_errors
from lasium.shards.format import ShardEntry
from lasium.tasks import TaskBatch


@dataclass
class ShardJob:
    """One shard ready to be written."""

    shard_index: int
    first_task: int
    support: np.ndarray  # uint8 (T, N, K_tr, H, W, C)
    query: np.ndarray  # uint8 (T, N, K_val, H, W, C)
    latents: np.ndarray | None  # float16 (T, N, K, D)
    metas: list[dict[str, Any]]

    @property
    def num_tasks(self) -> int:
        return int(self.support.shape[0])

    def batch(self) -> TaskBatch:
        return TaskBatch(self.support, self.query, self.latents, self.metas)


@dataclass(frozen=True)
class WriteTarget:
    """Where and how shards are written (the same for every shard of a run)."""

    out_dir: str
    name: str
    container: str
    header: dict[str, Any]
    compression: str = "auto"  # gzip | none (lasium.shards.write_shard)


def write_job(target: WriteTarget, job: ShardJob) -> ShardEntry:
    from lasium.shards import write_shard

    return write_shard(
        Path(target.out_dir),
        target.name,
        job.shard_index,
        job.first_task,
        job.batch(),
        target.container,
        target.header,
        compression=target.compression,
    )


class InlineWriter:
    """``--workers 0``: write each shard in the main process as it arrives (no overlap)."""

    def __init__(self, target: WriteTarget) -> None:
        self.target = target
        self._done: list[ShardEntry] = []
        self.in_flight: set[int] = set()

    def submit(self, job: ShardJob) -> None:
        self.in_flight.add(job.shard_index)
        self._done.append(write_job(self.target, job))
        self.in_flight.discard(job.shard_index)

    def poll(self) -> list[ShardEntry]:
        done, self._done = self._done, []
        return done

    def close(self) -> list[ShardEntry]:
        return self.poll()

    def abort(self) -> None:
        pass


# -- writer processes ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SlotLayout:
    """Byte layout of one shard in a shared-memory slot: support, query, latents back to back."""

    support_shape: tuple[int, ...]  # for a full shard; a shorter last shard uses a prefix
    query_shape: tuple[int, ...]
    latents_shape: tuple[int, ...] | None

    def sizes(self, num_tasks: int) -> tuple[int, int, int]:
        per = lambda shape, itemsize: int(np.prod(shape[1:], dtype=np.int64)) * itemsize * num_tasks  # noqa: E731
        lat = per(self.latents_shape, 2) if self.latents_shape else 0
        return per(self.support_shape, 1), per(self.query_shape, 1), lat

    @property
    def nbytes(self) -> int:
        return max(1, sum(self.sizes(self.support_shape[0])))

    def views(self, buf: memoryview, num_tasks: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        s, q, lat = self.sizes(num_tasks)
        support = np.frombuffer(buf, np.uint8, s, 0).reshape((num_tasks, *self.support_shape[1:]))
        query = np.frombuffer(buf, np.uint8, q, s).reshape((num_tasks, *self.query_shape[1:]))
        latents = None
        if self.latents_shape:
            latents = np.frombuffer(buf, np.float16, lat // 2, s + q).reshape((num_tasks, *self.latents_shape[1:]))
        return support, query, latents


def _die_with_parent() -> None:
    """Ask Linux to kill this writer when its parent dies (even by SIGKILL; the fork server exits with
    the job process), so an orphan never races a resumed run on a shard's temporary file."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def _job_process_alive() -> bool:
    parent = mp.parent_process()  # the job process (not the fork server), watched through a sentinel
    return parent is None or parent.is_alive()


def _writer_main(target: WriteTarget, layout: SlotLayout, slot_names: list[str], jobs: Any, results: Any) -> None:
    _die_with_parent()
    if not _job_process_alive():
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides what an interrupt does
    slots = [shared_memory.SharedMemory(name=n) for n in slot_names]
    try:
        while True:
            try:
                msg = jobs.get(timeout=1.0)
            except queue.Empty:
                if not _job_process_alive():
                    return
                continue
            if msg is None:
                return
            slot, shard_index, first_task, num_tasks, metas, arrays = msg
            try:
                if slot is None:
                    support, query, latents = arrays
                else:
                    support, query, latents = layout.views(slots[slot].buf, num_tasks)
                entry = write_job(target, ShardJob(shard_index, first_task, support, query, latents, metas))
                del support, query, latents
                results.put(("ok", slot, shard_index, entry.to_dict()))
            except OSError as exc:
                results.put(("oserror", slot, shard_index, (exc.errno, exc.strerror, exc.filename)))
            except lasium_errors.LasiumError as exc:
                results.put(("lasium", slot, shard_index, (type(exc).__name__, str(exc))))
            except BaseException:  # report, then keep serving: the main process decides to stop
                results.put(("error", slot, shard_index, traceback.format_exc()))
    finally:
        for s in slots:
            s.close()


def _process_context() -> Any:
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["lasium.generate.job.writers"])
        return ctx
    return mp.get_context("spawn")


def _reraise(kind: str, shard_index: int, payload: Any) -> None:
    if kind == "oserror":
        code, strerror, filename = payload
        raise OSError(code, strerror, filename)
    if kind == "lasium":
        cls_name, message = payload
        cls = getattr(lasium_errors, cls_name, lasium_errors.LasiumError)
        raise cls(message)
    raise RuntimeError(f"writer process failed on shard {shard_index}:\n{payload}")


class WriterPool:
    """``workers`` writer processes fed through shared-memory slots (at most ``workers + 2`` shards in
    flight). Processes come from a fork server (``spawn`` where there is none), so the device context
    of the main process is never forked, and this module is imported once for all writers."""

    def __init__(self, target: WriteTarget, workers: int, layout: SlotLayout, *, slots: int | None = None) -> None:
        self.target = target
        self.layout = layout
        self.in_flight: set[int] = set()
        self._done: list[ShardEntry] = []
        self._closed = False
        self._shm: list[shared_memory.SharedMemory] = []
        self._procs: list[Any] = []
        self._queues: list[Any] = []
        try:  # an interrupt (Ctrl-C, SIGTERM) half-way leaves no slot, queue or process behind
            self._start(workers, slots or workers + 2)
        except BaseException:
            self.abort()
            raise

    def _start(self, workers: int, n_slots: int) -> None:
        ctx = _process_context()
        try:
            for _ in range(n_slots):
                self._shm.append(shared_memory.SharedMemory(create=True, size=self.layout.nbytes))
        except OSError:
            # No room in /dev/shm: send the arrays through the queue instead (a copy, but it works).
            self._release_shm()
        self._free = list(range(len(self._shm)))
        self._max_pending = n_slots
        self._jobs = ctx.Queue()
        self._queues.append(self._jobs)
        self._results = ctx.Queue()
        self._queues.append(self._results)
        names = [s.name for s in self._shm]
        for i in range(workers):
            self._procs.append(
                ctx.Process(
                    target=_writer_main,
                    args=(self.target, self.layout, names, self._jobs, self._results),
                    daemon=True,
                    name=f"lasium-gen-writer-{i}",
                )
            )
            self._procs[-1].start()

    def _release_shm(self) -> None:
        for s in self._shm:
            s.close()
            try:
                s.unlink()
            except FileNotFoundError:
                pass
        self._shm = []

    def _collect(self, block: bool) -> None:
        """Take one result (waiting up to forever when ``block``), checking that writers are alive."""
        while True:
            try:
                kind, slot, shard_index, payload = (
                    self._results.get(timeout=0.5) if block else self._results.get_nowait()
                )
            except queue.Empty:
                if not block:
                    return
                dead = [p for p in self._procs if not p.is_alive()]
                if dead:
                    raise RuntimeError(
                        f"writer process {dead[0].name} died (exit code "
                        f"{dead[0].exitcode}); rerun the same command to resume"
                    ) from None
                continue
            if slot is not None:
                self._free.append(slot)
            self.in_flight.discard(shard_index)
            if kind != "ok":
                _reraise(kind, shard_index, payload)
            self._done.append(ShardEntry(**payload))
            return

    def submit(self, job: ShardJob) -> None:
        """Queue a shard; blocks while every slot is busy (back-pressure on the device loop)."""
        while len(self.in_flight) >= self._max_pending or (self._shm and not self._free):
            self._collect(block=True)
        self._collect(block=False)
        msg: tuple[Any, ...]  # (slot or None, shard index, first task, tasks, metas, arrays or None)
        if self._shm:
            slot = self._free.pop()
            support, query, latents = self.layout.views(cast(memoryview, self._shm[slot].buf), job.num_tasks)
            np.copyto(support, job.support)
            np.copyto(query, job.query)
            if latents is not None and job.latents is not None:
                np.copyto(latents, job.latents)
            del support, query, latents
            msg = (slot, job.shard_index, job.first_task, job.num_tasks, job.metas, None)
        else:
            # The queue pickles in a background thread: hand it copies, the caller reuses its buffers.
            arrays = tuple(None if a is None else np.array(a, copy=True) for a in (job.support, job.query, job.latents))
            msg = (None, job.shard_index, job.first_task, job.num_tasks, job.metas, arrays)
        self.in_flight.add(job.shard_index)
        self._jobs.put(msg)

    def poll(self) -> list[ShardEntry]:
        while True:
            before = len(self._done)
            self._collect(block=False)
            if len(self._done) == before:
                break
        done, self._done = self._done, []
        return done

    def close(self) -> list[ShardEntry]:
        """Wait for every queued shard, stop the writers, free the slots; returns the last entries."""
        try:
            while self.in_flight:
                self._collect(block=True)
            for _ in self._procs:
                self._jobs.put(None)
            for p in self._procs:
                p.join()
        finally:
            self.abort()
        done, self._done = self._done, []
        return done

    def abort(self) -> None:
        """Stop the writers now (on error or interrupt) and free the slots."""
        if self._closed:
            return
        self._closed = True
        try:
            for p in self._procs:
                if p.pid is not None and p.is_alive():
                    p.terminate()
            for p in self._procs:
                if p.pid is not None:
                    p.join(timeout=10)
            for q in self._queues:
                q.cancel_join_thread()
                q.close()
        finally:
            self._release_shm()


def is_enospc(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno == errno_mod.ENOSPC
