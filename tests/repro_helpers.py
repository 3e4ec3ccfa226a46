"""A reproduction driver's Pipeline for tests: the arguments ``repro_omniglot.py`` would parse, nothing run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from repro_omniglot import PRESETS, RATES  # benchmarks/ is on sys.path (conftest)
from repro_pipeline import Pipeline


def driver_pipeline(
    tmp_path: Path,
    *,
    preset: str = "quick",
    resume: bool = False,
    rates: dict[str, float] | None = None,
    reuse: list[str] | None = None,
    device: str = "cpu",
    threads: int | None = 1,
) -> Pipeline:
    """A Pipeline at ``preset`` sizes on a CPU with the bundled generator, its work and results under ``tmp_path``."""
    args: dict[str, Any] = dict(
        work=str(tmp_path / "work"),
        results=str(tmp_path / "results"),
        budget_seconds=None,
        threads=threads,
        sizes=preset,
        resume=resume,
        seed=0,
        eval_seed=0,
        device=device,
        data_root=None,
        generator="omniglot-gan",
        fit=False,
    )
    if reuse is not None:
        args["reuse_results"] = reuse
    p = Pipeline(
        argparse.Namespace(**args),
        sizes=PRESETS[preset],
        rates=RATES["cpu"] if rates is None else rates,
        device_type="cpu",
        device={},
    )
    p.generator = {"spec": "omniglot-gan", "ok": True}
    return p
