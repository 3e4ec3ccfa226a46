"""Running reproduction stages as the real console commands: one subprocess per stage, its exact command line,
log, status and wall time recorded, a deadline enforced, and finished stages reused on ``--resume``.

Shared by every experiment of :mod:`lasium.repro` (the Omniglot rows, the sweep, the GAN-epoch curve, the
precision check). A work folder keeps, per stage, ``logs/<name>.log``, ``logs/<name>.started.json`` (the
command and its running time, refreshed every minute) and, once it succeeded, ``logs/<name>.done.json``.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CONSOLE_MODULES = {
    "lasium-fit": "lasium.generate.models.fit_cli",
    "lasium-gen": "lasium.generate.job.cli",
    "lasium-train": "lasium.train.cli",
    "lasium-eval": "lasium.evaluate.cli",
    "lasium-shards": "lasium.shards.cli",
}


def tool(name: str) -> list[str]:
    """The console script of the Python running this one (beside ``sys.executable``), else its entry point run by
    this Python.

    Never a script found on PATH: that may belong to another environment (another lasium, or none), and
    ``/venv/bin/lasium-repro`` run without activating its environment must still run its own stages.
    """
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    return [
        sys.executable,
        "-c",
        f"import sys; sys.argv[0] = {name!r}; from {CONSOLE_MODULES[name]} import main; main()",
    ]


# Options that change how a command runs, not what it computes: commands that differ only in them are the same
# stage (``--checkpoint-every`` only adds checkpoints; ``--resume`` continues the identical computation).
NOT_DEFINING = {"--checkpoint-every": 1, "--resume": 0}
# The same for one program only: ``lasium-eval --workers`` shares the tasks out among processes, same scores.
NOT_DEFINING_IN = {"lasium-eval": {"--workers": 1}}
# Options renamed since a work folder's records were written: the old spelling means the new option.
RENAMED = {"--preset": "--tuned-for"}  # lasium-gen, 2026-12-02


WORK_PLACEHOLDER = "<work>"


def work_spellings(work: Path) -> tuple[str, ...]:
    """The ways a command can name the work folder: as given, as an absolute path, and relative to the current
    directory (longest first)."""
    absolute = os.path.abspath(work)
    spellings = {str(work), absolute, os.path.relpath(absolute)}
    return tuple(sorted((s.rstrip("/") for s in spellings if s not in ("", ".")), key=len, reverse=True))


def canonical(command: str, work: Path | None = None) -> str:
    """``command`` without the options of :data:`NOT_DEFINING` and its program's :data:`NOT_DEFINING_IN` (and their
    values); with ``work``, every path
    inside the work folder written relative to it, so that ``--work runs/r`` and ``--work /abs/runs/r`` (the same
    folder from the same directory) plan the same stages."""
    words, out, i = shlex.split(command), [], 0
    spellings = work_spellings(work) if work is not None else ()
    skip = {**NOT_DEFINING, **NOT_DEFINING_IN.get(words[0] if words else "", {})}
    while i < len(words):
        if words[i] in skip:
            i += 1 + skip[words[i]]
            continue
        word = RENAMED.get(words[i], words[i])
        for prefix in spellings:
            if word == prefix or word.startswith(prefix + "/"):
                word = WORK_PLACEHOLDER + word[len(prefix) :]
                break
        out.append(word)
        i += 1
    return shlex.join(out)


def same_commands(
    a: dict[str, str] | None, b: dict[str, str] | None, work: Path | None = None, a_work: Path | None = None
) -> bool:
    """Whether two rows' stage commands (by stage) are the same up to :data:`NOT_DEFINING` options (and, with
    ``work``, up to how the work folder is spelled). ``a_work``: how ``a``'s driver spelled its work folder, when it
    ran from another directory (``--work repro-cpu`` in ``runs/`` is ``--work runs/repro-cpu`` at the root)."""
    if not a or not b or set(a) != set(b):
        return False
    return all(canonical(a[k], a_work or work) == canonical(b[k], work) for k in a)


def page_work(page: dict[str, Any]) -> Path | None:
    """The work folder a results page's driver used, as it spelled it: its recorded options, else ``--work`` in its
    recorded command line (pages written before options were recorded), else None."""
    work = (page.get("options") or {}).get("work")
    if work:
        return Path(work)
    words = shlex.split(str(page.get("driver_command") or ""))
    for i, word in enumerate(words[:-1]):
        if word == "--work":
            return Path(words[i + 1])
    return None


def same_identity(recorded: dict[str, Any] | None, planned: dict[str, Any] | None) -> bool:
    """Whether a stage record's ``identity`` (what the stage depends on beyond its command line, e.g. the sha256 of
    the generator weights a spec names) allows reusing it: equal, or not recorded on either side (records written
    before identities were kept are judged by their command alone)."""
    return recorded is None or planned is None or recorded == planned


def wait_with_heartbeat(
    proc: subprocess.Popen, timeout: float | None, heartbeat: Callable[[], None], every: float = 60.0
) -> int:
    """``proc.wait(timeout)``, calling ``heartbeat()`` every ``every`` seconds meanwhile."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise subprocess.TimeoutExpired(proc.args, timeout or 0.0)
        try:
            return proc.wait(timeout=every if left is None else min(every, left))
        except subprocess.TimeoutExpired:
            if left is not None and left <= every:
                raise
            heartbeat()


def resume_training(run: Path) -> Callable[[], list[str]]:
    """``continue_with`` of a ``lasium-train`` stage: ``--resume`` once ``run`` holds a checkpoint."""

    def continue_with() -> list[str]:
        from lasium.train import latest_checkpoint  # the training stack, only when a stage is about to run

        return ["--resume"] if latest_checkpoint(run) is not None else []

    return continue_with


def resume_evaluation(out: Path) -> Callable[[], list[str]]:
    """``continue_with`` of a ``lasium-eval`` stage: ``--resume`` once ``out`` has a partial evaluation beside it."""

    def continue_with() -> list[str]:
        from lasium.evaluate import partial_path

        return ["--resume"] if partial_path(out).is_file() else []

    return continue_with


REUSED = "reused from an earlier invocation of the driver"
"""The note of a stage record that this invocation did not run (its time is the earlier run's)."""


class StageRunner:
    """Runs commands as stages under ``work/logs``; ``remaining()`` gives the seconds left (None = no deadline)."""

    def __init__(
        self,
        work: Path,
        env: dict[str, str],
        *,
        resume: bool,
        remaining: Callable[[], float | None] = lambda: None,
        tag: str = "repro",
    ) -> None:
        self.work, self.env, self.resume, self.remaining, self.tag = Path(work), env, resume, remaining, tag
        self.stages: list[dict[str, Any]] = []

    def run(
        self,
        name: str,
        console: str,
        args: list[str],
        row: str | None = None,
        produces: Path | None = None,
        continue_with: Callable[[], list[str]] | None = None,
        identity: dict[str, Any] | None = None,
    ) -> bool:
        """Run one command with its output in logs/<name>.log; record it; False if it failed or timed out.

        A stage that succeeded leaves ``logs/<name>.done.json``; with ``--resume`` a stage whose identical command
        (up to :data:`NOT_DEFINING` options) already succeeded, and whose output ``produces`` still exists, is not
        run again, and its earlier record (wall time included) is kept, marked as reused.

        A stage that started and did not finish (``logs/<name>.started.json``: killed, or the session ended) is
        continued with ``--resume``: when its command is unchanged, ``continue_with()`` gives the arguments that
        make the command pick up its own partial output (e.g. ``["--resume"]`` when a checkpoint exists). Partial
        output the driver did not start (no ``started.json``: the planned command run by hand) is continued the
        same way; the command itself then checks that the output is its own (``lasium-train --resume`` refuses a
        run trained with other settings, ``lasium-eval --resume`` a partial evaluation of another checkpoint).

        ``identity``: what the stage's result depends on that its command does not say (the weights behind a
        generator's name); a record with another identity is neither reused nor continued (:func:`same_identity`).
        """
        display = shlex.join([console] + args)
        logs = self.work / "logs"
        done_path, started_path = logs / f"{name}.done.json", logs / f"{name}.started.json"
        if self.resume and done_path.is_file() and (produces is None or produces.exists()):
            earlier = json.loads(done_path.read_text())
            if (
                canonical(earlier.get("command", ""), self.work) == canonical(display, self.work)
                and earlier.get("status") == "ok"
                and same_identity(earlier.get("identity"), identity)
            ):
                earlier["note"] = REUSED
                self.stages.append(earlier)
                print(f"[{self.tag}] {name}: reused ({earlier['seconds']:.1f} s earlier)", flush=True)
                return True
        done_path.unlink(missing_ok=True)
        record: dict[str, Any] = {"name": name, "row": row, "command": display, "status": "running", "seconds": None}
        if identity is not None:
            record["identity"] = identity
        self.stages.append(record)
        remaining = self.remaining()
        if remaining is not None and remaining < 1:
            record.update(status="skipped", note="time budget used up", seconds=0.0)
            return False
        ran, before, adopted = list(args), 0.0, False
        if self.resume and continue_with is not None:
            started = json.loads(started_path.read_text()) if started_path.is_file() else None
            if started is None or (
                canonical(started.get("command", ""), self.work) == canonical(display, self.work)
                and same_identity(started.get("identity"), identity)
            ):
                extra = continue_with()
                ran += [a for a in extra if a not in ran]
                if extra:
                    record["continued"] = shlex.join([console] + ran)
                    # the interrupted runs' time, up to a heartbeat; unknown for output this driver did not start
                    before = float(started.get("seconds") or 0.0) if started else 0.0
                    adopted = started is None
        log_path = logs / f"{name}.log"
        logs.mkdir(parents=True, exist_ok=True)
        print(f"[{self.tag}] {name}: {record.get('continued', display)}", flush=True)
        t0 = time.time()

        def heartbeat() -> None:  # how long the stage has run, for a continuation after a hard kill
            beat = {"command": display, "seconds": before + time.time() - t0}
            started_path.write_text(json.dumps(beat | ({"identity": identity} if identity is not None else {})) + "\n")

        heartbeat()
        with open(log_path, "a" if "continued" in record else "w") as log:
            proc = subprocess.Popen(
                tool(console) + ran, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=self.env
            )
            try:
                rc = wait_with_heartbeat(proc, remaining, heartbeat)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the command and its worker processes
                proc.wait()
                rc = None
            except BaseException:  # interrupted: take the running command (its own session) down too
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise
        record["seconds"] = round(before + time.time() - t0, 2)
        record["log"] = str(log_path)
        if rc == 0:
            record["status"] = "ok"
            if adopted:
                record["note"] = (
                    "continued from output this driver did not start (its earlier time is not counted): "
                    + record["continued"]
                )
            elif "continued" in record:
                record["note"] = "continued from an interrupted run: " + record["continued"]
                record["earlier_seconds"] = round(before, 2)  # the interrupted runs' part of ``seconds``
            done_path.write_text(json.dumps(record) + "\n")
            started_path.unlink(missing_ok=True)
        else:
            lines = [ln.strip() for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()]
            record["status"] = "timeout" if rc is None else "failed"
            record["note"] = "killed at the time budget" if rc is None else (lines[-1][:300] if lines else f"exit {rc}")
        print(f"[{self.tag}] {name}: {record['status']} in {record['seconds']:.1f} s", flush=True)
        return rc == 0
