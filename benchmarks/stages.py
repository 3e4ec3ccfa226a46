"""Running benchmark stages as the real console commands: one subprocess per stage, its exact command line,
log, status and wall time recorded, a deadline enforced, and finished stages reused on ``--resume``.

Shared by ``repro_omniglot.py`` (through ``repro_pipeline.Pipeline``) and ``sweep_omniglot.py``.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
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
    """The console script when installed on PATH, else the same entry point through this Python."""
    exe = shutil.which(name)
    if exe:
        return [exe]
    return [
        sys.executable,
        "-c",
        f"import sys; sys.argv[0] = {name!r}; from {CONSOLE_MODULES[name]} import main; main()",
    ]


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
        self, name: str, console: str, args: list[str], row: str | None = None, produces: Path | None = None
    ) -> bool:
        """Run one command with its output in logs/<name>.log; record it; False if it failed or timed out.

        A stage that succeeded leaves ``logs/<name>.done.json``; with ``--resume`` a stage whose identical command
        already succeeded (and whose output ``produces`` still exists) is not run again, and its earlier record
        (wall time included) is kept, marked as reused.
        """
        display = shlex.join([console] + args)
        done_path = self.work / "logs" / f"{name}.done.json"
        if self.resume and done_path.is_file() and (produces is None or produces.exists()):
            earlier = json.loads(done_path.read_text())
            if earlier.get("command") == display and earlier.get("status") == "ok":
                earlier["note"] = "reused from an earlier invocation of the driver"
                self.stages.append(earlier)
                print(f"[{self.tag}] {name}: reused ({earlier['seconds']:.1f} s earlier)", flush=True)
                return True
        done_path.unlink(missing_ok=True)
        record: dict[str, Any] = {"name": name, "row": row, "command": display, "status": "running", "seconds": None}
        self.stages.append(record)
        remaining = self.remaining()
        if remaining is not None and remaining < 1:
            record.update(status="skipped", note="time budget used up", seconds=0.0)
            return False
        log_path = self.work / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        print(f"[{self.tag}] {name}: {display}", flush=True)
        t0 = time.time()
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                tool(console) + args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=self.env
            )
            try:
                rc = proc.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the command and its worker processes
                proc.wait()
                rc = None
            except BaseException:  # interrupted: take the running command (its own session) down too
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise
        record["seconds"] = round(time.time() - t0, 2)
        record["log"] = str(log_path)
        if rc == 0:
            record["status"] = "ok"
            done_path.write_text(json.dumps(record) + "\n")
        else:
            lines = [ln.strip() for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()]
            record["status"] = "timeout" if rc is None else "failed"
            record["note"] = "killed at the time budget" if rc is None else (lines[-1][:300] if lines else f"exit {rc}")
        print(f"[{self.tag}] {name}: {record['status']} in {record['seconds']:.1f} s", flush=True)
        return rc == 0
