"""Accuracy against generator training (``lasium-repro epoch-curve``): LASIUM-N + ProtoNets validation accuracy
for each snapshot of a GAN or VAE that ``lasium-fit --keep-epochs`` kept.

The LASIUM authors tie accuracy to how long their GAN trained (their figure data, LASIUM-N, 5-way 1-shot, 1,000
iterations: 51.95 / 67.50 / 77.35 / 78.21 / 80.51 after 0 / 10 / 50 / 200 / 400 epochs; ``docs/reference-facts.md``,
"Accuracy against GAN training"); their figure data covers no VAE. This draws ours from the snapshots a
fit kept (``lasium-repro bundled`` keeps the GAN's 0, 10, 50, 200 and 400 by default)::

    lasium-repro bundled --out runs/bundled                                   # GPU: the fits and their snapshots
    lasium-repro epoch-curve --fit runs/bundled/omniglot-gan                  # work in runs/gan-curve
    lasium-repro epoch-curve --fit runs/vae-fit --resume                      # a VAE fit; continue an interrupted curve
    lasium-repro epoch-curve --fit runs/gan-cont --keep-points results/accuracy-vs-gan-epochs.json

``--keep-points`` carries an earlier curve's points (its results JSON, same kind and budget) onto this one at the
epochs this fit does not score, e.g. a fit continued from a bundled generator (``lasium-fit --init-from``) beside the
early epochs of a fit from scratch with the same recipe. Each kept point names the fit it came from, on the page and
in the chart.

The generator's kind (GAN or VAE) is the one the fit's ``config.json`` records (``"kind"``, written by
``lasium-fit``); it names the results, ``accuracy-vs-{kind}-epochs.json``, ``.md`` and ``.png``, written into the
results folder after every snapshot.

Every snapshot (each ``epoch-NNNN/`` folder and the final model) gets the same fixed small budget, a sweep point
(:mod:`lasium.repro.sweep`) with ``--generator`` set to the snapshot: ``lasium-gen --strategy n --tuned-for
protonets`` (σ: the value tuned for ProtoNets tasks of the generator's kind, which ``lasium-gen`` reads from the
snapshot; each point records the σ its shard set used) → ``lasium-train --algo protonets --augment auto`` (by default
the authors' 1,000 iterations of 4 distinct tasks) → ``lasium-eval --split val`` (validation characters, never the
test split; 1- and 5-shot). The Fréchet distance of a snapshot is shown beside it when ``lasium-repro bundled``
measured it (``fid.json``).

The published GAN numbers are test accuracies of the authors' setup (no query shift, their GAN); ours are validation
accuracies with this project's trainer, so the comparison is of the curve's shape and level.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lasium.errors import ConfigError

from .curve_page import GENERATOR_KINDS, page_name, results_format, results_kind, row_epochs, write_page
from .options import argv_of
from .records import machine
from .stages import StageRunner
from .sweep import Point, PointBudget, commands, run_point, stage_env, summarise

QUICK = dict(tasks=24, iterations=4, val_tasks=10)  # --quick: a smoke run of every stage
# The budget of each point: the authors' 1,000 iterations × 4 distinct tasks; the generator's own precision.
CURVE_BUDGET = PointBudget(tasks=4000, iterations=1000, meta_batch=4, val_tasks=1000, gen_precision="auto")


@dataclass(frozen=True)
class CurveOptions:
    """The options of ``lasium-repro epoch-curve`` (each a command-line option of the same name)."""

    fit: Path  # a lasium-fit output folder with epoch-NNNN/ snapshots
    budget: PointBudget = field(default_factory=lambda: CURVE_BUDGET)
    epochs: tuple[int, ...] = ()  # only these training epochs (empty: every snapshot)
    work: Path | None = None  # None: runs/<kind>-curve
    results: Path = Path("results")
    threads: int | None = None  # OMP_NUM_THREADS of every stage (None: unchanged)
    resume: bool = False
    keep_points: Path | None = None  # an earlier curve's results JSON: its points at epochs this fit does not score

    def command_line(self) -> str:
        """``lasium-repro epoch-curve`` with the options not at their default (what the page records)."""
        return shlex.join(["lasium-repro", "epoch-curve", "--fit", str(self.fit), *argv_of(self)])

    def work_folder(self, kind: str) -> Path:
        """Where the stages of a curve of a ``kind`` generator run: ``work``, else ``runs/<kind>-curve``."""
        return self.work if self.work is not None else Path("runs") / f"{kind}-curve"

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(fit=str(self.fit), results=str(self.results), epochs=list(self.epochs))
        out["work"] = str(self.work) if self.work is not None else None
        out["keep_points"] = str(self.keep_points) if self.keep_points is not None else None
        return out


def _read_json(path: Path, give: str, named: str = "") -> Any:
    """The JSON value in ``path``; a :class:`ConfigError` line (``named``: the option it came from) saying to
    ``give`` something else when the file is not readable JSON."""
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{named}{path} is not readable JSON ({exc}); give {give}") from None


def _read_config(folder: Path) -> dict[str, Any]:
    """A snapshot's ``config.json`` as a dict; a :class:`ConfigError` line when it is not readable JSON."""
    path = folder / "config.json"
    config = _read_json(path, "a lasium-fit output folder")
    if not isinstance(config, dict):
        raise ConfigError(f"{path} is not a lasium-fit config (not a JSON object); give a lasium-fit output folder")
    return config


def fit_kind(fit: Path) -> str:
    """The generator kind (``gan``, ``vae``) the fit folder's ``config.json`` records; a :class:`ConfigError` line
    when it records none (or one no curve is drawn for)."""
    if not (fit / "config.json").is_file():
        raise ConfigError(
            f"{fit} has no config.json: give a lasium-fit output folder (lasium-fit --keep-epochs 0,10,... --out DIR)"
        )
    kind = _read_config(fit).get("kind")
    if kind not in GENERATOR_KINDS:
        said = "records no generator kind" if kind is None else f"records generator kind {kind!r}"
        raise ConfigError(
            f'{fit / "config.json"} {said}; give a lasium-fit output folder (its config.json says "kind": '
            f"{' or '.join(json.dumps(k) for k in GENERATOR_KINDS)})"
        )
    return str(kind)


def snapshots(fit: Path, kind: str | None = None) -> dict[int, Path]:
    """Training epochs → folder: every complete ``epoch-NNNN/`` snapshot under ``fit`` and the final model itself.
    With ``kind``, a snapshot that records another generator kind is a :class:`ConfigError`."""
    found: dict[int, Path] = {}
    for folder in sorted(fit.glob("epoch-*")) + [fit]:
        if not (folder / "config.json").is_file():
            continue
        config = _read_config(folder)
        if kind is not None and config.get("kind") != kind:
            raise ConfigError(
                f"{folder / 'config.json'} records generator kind {config.get('kind')!r}, but the fit {fit} is a "
                f"{kind!r}: a fit folder holds snapshots of its own generator only"
            )
        epochs = config.get("epochs_done")
        if epochs is not None:
            found.setdefault(int(epochs), folder)
    return found


def frechet_distance(folder: Path) -> float | None:
    """The snapshot's Fréchet distance to the test split, when ``lasium-repro bundled`` measured it."""
    fid = folder / "fid.json"
    if not fid.is_file():
        return None
    record = json.loads(fid.read_text())
    value = record.get("fd_generated_vs_test")
    return float(value) if value is not None else None


def shard_sigma(shards: Path) -> float | None:
    """The σ a LASIUM-N shard set was generated with (its manifest's config), None when it has no manifest."""
    manifest = shards / "manifest.json"
    if not manifest.is_file():
        return None
    value = json.loads(manifest.read_text()).get("config", {}).get("sigma")
    return float(value) if value is not None else None


SIZE_KEYS = ("tasks", "iterations", "meta_batch", "val_tasks", "seed")  # the budget a curve's points share


def kept_points(path: Path, kind: str, sizes: Mapping[str, Any], fit: str) -> list[dict[str, Any]]:
    """The points of an earlier curve (its results JSON at ``path``) to carry onto a curve of ``fit``: every scored
    one (a failed point is not carried), each marked with the fit it came from (``kept_from``; none when that is
    ``fit`` itself). A :class:`ConfigError` line when the file is not such results, or records another generator
    kind or another budget."""
    earlier = _read_json(path, "an accuracy-vs-*-epochs.json", named="--keep-points ")
    rows_ok = (
        isinstance(earlier, dict) and isinstance(earlier.get("rows"), list) and isinstance(earlier.get("sizes"), dict)
    )
    if not rows_ok or not all(isinstance(r, dict) and ("epochs" in r or "gan_epochs" in r) for r in earlier["rows"]):
        raise ConfigError(f"--keep-points {path} holds no curve (no rows and sizes); give an accuracy-vs-*-epochs.json")
    their_kind = results_kind(earlier)
    if their_kind != kind:
        raise ConfigError(
            f"--keep-points {path} is a {their_kind} curve, but --fit is a {kind} fit: keep points of the same kind"
        )
    differ = [
        f"{k} {earlier['sizes'].get(k)} (now {sizes[k]})" for k in SIZE_KEYS if earlier["sizes"].get(k) != sizes[k]
    ]
    if differ:
        raise ConfigError(
            f"--keep-points {path} was scored with another budget: {', '.join(differ)}; points of one curve share "
            "one budget, so give the same --tasks/--iterations/--meta-batch/--val-tasks/--seed"
        )
    origin = {"fit": earlier.get("fit"), "command": earlier.get("command")}
    rows = []
    for row in earlier["rows"]:
        if row.get("status") != "ok":
            continue
        row = dict(row)
        marked = row.pop("kept_from", None)
        came_from: dict[str, Any] = marked if isinstance(marked, dict) else origin
        if came_from.get("fit") != fit:
            row["kept_from"] = came_from
        rows.append(row)
    return rows


def chosen_snapshots(options: CurveOptions, kind: str) -> dict[int, Path]:
    """The snapshots of a ``kind`` fit the curve scores (``epochs``, else every one); a :class:`ConfigError` when
    there are none."""
    label = GENERATOR_KINDS[kind].label
    found = snapshots(options.fit, kind)
    if not found:
        raise ConfigError(
            f"no {label} snapshots under {options.fit}: give a lasium-fit output folder (--keep-epochs 0,10,...)"
        )
    if options.epochs:
        missing = sorted(set(options.epochs) - set(found))
        if missing:
            raise ConfigError(f"no snapshot for {label} epochs {missing} under {options.fit} (found {sorted(found)})")
        found = {e: f for e, f in found.items() if e in options.epochs}
    return found


def run(options: CurveOptions) -> dict[str, Any]:
    """Score every chosen snapshot (``resume``: reusing finished stages), writing the page after each; return the
    results as written. A snapshot whose stages fail is recorded as failed and the rest go on."""
    options.budget.validate()
    kind = fit_kind(options.fit)
    found = chosen_snapshots(options, kind)
    work_root = options.work_folder(kind)
    if work_root.exists() and any(work_root.iterdir()) and not options.resume:
        raise ConfigError(f"{work_root} holds an earlier curve; pass --resume to continue it or choose another --work")
    sizes = {k: getattr(options.budget, k) for k in SIZE_KEYS}
    kept: list[dict[str, Any]] = []
    if options.keep_points is not None:  # read before this curve's results (perhaps the same file) are written
        kept = [
            r for r in kept_points(options.keep_points, kind, sizes, str(options.fit)) if row_epochs(r) not in found
        ]
    options.results.mkdir(parents=True, exist_ok=True)
    env = stage_env(options.threads)
    # the --tuned-for σ (no --sigma): the product default for LASIUM-N ProtoNets tasks of this generator kind
    point = Point(f"{kind}-epochs", "n", "sigma", None, "auto")
    start, rows = time.time(), []
    results: dict[str, Any] = {}
    for epochs, folder in sorted(found.items()):
        work = work_root / f"epoch-{epochs:04d}"
        cmds = commands(point, options.budget, work)
        cmds["gen"] += ["--generator", str(folder)]
        runner = StageRunner(work, env, resume=options.resume, tag=f"curve {epochs}")
        row = summarise(point, run_point(runner, point, cmds, work, set()), cmds)
        row.update(epochs=epochs, snapshot=str(folder), frechet_distance=frechet_distance(folder))
        row["sigma"] = shard_sigma(work / "shards" / point.shard_name)
        row["stages"] = runner.stages
        rows.append(row)
        results = {
            "format": results_format(kind),
            "kind": kind,
            "command": options.command_line(),
            "options": options.to_json(),
            "device": machine(options.budget.device),
            "fit": str(options.fit),
            "work": str(work_root),
            "sizes": sizes,
            "published": {str(k): v for k, v in GENERATOR_KINDS[kind].published.items()},
            "wall_seconds": round(time.time() - start, 1),
            "rows": sorted(rows + kept, key=row_epochs),
        }
        write_page(results, options.results)
    ok = sum(r["status"] == "ok" for r in rows)
    page = options.results / f"{page_name(kind)}.md"
    print(
        f"[curve] {ok}/{len(rows)} {GENERATOR_KINDS[kind].label} snapshots in {time.time() - start:.0f} s; see {page}"
    )
    return results
