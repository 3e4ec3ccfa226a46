"""A SIGTERM to a ``lasium-repro`` command (e.g. from ``timeout``) takes the running stage down with it.

Stages run in their own sessions (so a deadline can kill a stage with its workers); the command's SIGTERM handling is
the one every lasium command has (:func:`lasium.cli_support.sigterm_as_interrupt` through ``user_errors``), and the
stage runner kills the stage's process group on the way out.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import click

    from lasium.cli_support import user_errors
    from lasium.repro import stages

    work, pidfile = Path(sys.argv[1]), sys.argv[2]
    # The stage: a process that records its pid and sleeps (stands in for lasium-train).
    sleeper = "import os, time; open({!r}, 'w').write(str(os.getpid())); time.sleep(120)".format(pidfile)
    stages.tool = lambda name: [sys.executable, "-c", sleeper]


    @click.command()
    @user_errors
    def main() -> None:
        stages.StageRunner(work, dict(__import__("os").environ), resume=False).run("train-x", "lasium-train", [])


    main([])
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigterm_stops_the_running_stage(tmp_path: Path) -> None:
    script, pidfile = tmp_path / "driver.py", tmp_path / "stage.pid"
    script.write_text(SCRIPT)
    driver = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "work"), str(pidfile)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (pidfile.exists() and pidfile.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pidfile.exists(), driver.communicate(timeout=5)
    stage_pid = int(pidfile.read_text())
    assert _alive(stage_pid)

    driver.send_signal(signal.SIGTERM)
    _, err = driver.communicate(timeout=30)
    assert driver.returncode == 143, err
    assert err.strip().splitlines()[-1] == "terminated"
    deadline = time.monotonic() + 10
    while _alive(stage_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(stage_pid), "the stage outlived the command"
    assert not (tmp_path / "work" / "logs" / "train-x.done.json").exists()
