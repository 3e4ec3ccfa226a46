"""The machinery of the Omniglot reproduction: runs each stage as a subprocess (its exact command, log, status and
wall time recorded), enforces the time budget, reuses finished work on ``--resume`` and writes the results page
after every row.

Stage sizes and throughput estimates live in :mod:`~lasium.repro.sizes`, the rows in :mod:`~lasium.repro.rows`,
the commands in :mod:`~lasium.repro.plan`; this module only runs them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .committed import CommittedRows
from .generator_work import GeneratorWork
from .generators import manifest_generator
from .plan import StagePlanner
from .records import task_source_summary, train_summary, validation_curve
from .stages import StageRunner, resume_evaluation, resume_training

if TYPE_CHECKING:  # the driver passes its options, sizes and rates in; nothing is imported back from it
    from .options import OmniglotOptions
    from .rows import Row
    from .sizes import Sizes

RESULTS_FORMAT = "lasium-repro-omniglot"  # the "format" of omniglot.json (format_version 1)


class Pipeline(StagePlanner, GeneratorWork):
    """Runs the stages, keeps the record, enforces the budget."""

    def __init__(
        self,
        options: OmniglotOptions,
        sizes: Sizes,
        rates: dict[str, float],
        device_type: str,
        device: dict[str, Any],
    ) -> None:
        self.options, self.sizes, self.rates, self.device_type, self.device = options, sizes, rates, device_type, device
        self.work, self.results_dir = Path(options.work), Path(options.results)
        self.start = time.time()
        self.deadline = self.start + options.budget_seconds if options.budget_seconds else None
        self.reserve = 10.0 if device_type == "cuda" else 15.0  # for curves, previews' page and the final write
        self.rows: list[dict[str, Any]] = []
        self.generator: dict[str, Any] = {}
        self.made: dict[tuple[str, str], Path] = {}  # shard sets written so far, by shard_key
        self.previews: dict[str, str] = {}
        self.clustered = False  # a CACTUs set was generated in this run: its k-means partitions are cached
        self.described: dict[str, dict[str, Any] | None] = {}  # generator records by spec (describe_generator)
        self.identities: dict[str, dict[str, Any]] = {}  # row key -> what its stages depend on beyond commands
        self.regenerated: set[Path] = set()  # shard sets of an earlier generator removed by this run
        self.env = dict(os.environ)
        self.threads = options.threads
        if (
            self.threads is None
            and options.sizes != "gpu"
            and device_type == "cpu"
            and "OMP_NUM_THREADS" not in os.environ
        ):
            # Tiny tensors on a small shared CPU: one intra-op thread avoids OpenMP spin-waiting (10x faster measured).
            self.threads = 1
        if self.threads:
            self.env.update(OMP_NUM_THREADS=str(self.threads), MKL_NUM_THREADS=str(self.threads))
        self.runner = StageRunner(self.work, self.env, resume=options.resume, remaining=self.remaining)
        self.stages = self.runner.stages
        # rows (and their stages) of the committed results page, for --resume across sessions (plus --reuse-results
        # pages: rows another driver ran in parallel, on the other core, into its own page)
        pages = [self.results_dir / "omniglot.json", *options.reuse_results]
        self.committed = (
            CommittedRows.read(pages, options.sizes, self.results_dir) if options.resume else CommittedRows()
        )
        self.previews.update(self.committed.previews)

    # --- budget -----------------------------------------------------------------------------------
    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.time() - self.reserve

    # --- running ----------------------------------------------------------------------------------
    def run(
        self,
        name: str,
        console: str,
        args: list[str],
        row: str | None = None,
        produces: Path | None = None,
        continue_with: Callable[[], list[str]] | None = None,
    ) -> bool:
        """One stage through :class:`~lasium.repro.stages.StageRunner` (its log, record, budget, ``--resume``); a
        row's stages carry its identity (the sha256 of the generator weights its tasks come from)."""
        identity = self.identities.get(row) if row else None
        return self.runner.run(name, console, args, row, produces, continue_with, identity=identity)

    # --- stages -----------------------------------------------------------------------------------
    def prepare_generator(self) -> bool:
        a, s = self.options, self.sizes
        if a.fit:
            out = self.work / "gan"
            args = [
                "--model",
                "gan",
                "--dataset",
                "omniglot",
                "--epochs",
                str(s.fit_epochs),
                "--max-minutes",
                str(s.fit_minutes),
                "--seed",
                str(a.seed),
                "--out",
                str(out),
                "--quiet",
            ] + (["--limit", str(s.fit_limit)] if s.fit_limit else [])
            args += (["--device", a.device] if a.device in ("cpu", "cuda") else []) + (
                ["--data-root", a.data_root] if a.data_root else []
            )
            ok = self.run("fit-gan", "lasium-fit", args)
            self.generator = {
                "spec": str(out),
                "description": f"GAN fitted by this run ({s.fit_minutes} min budget, `{out}`)",
            }
            return ok
        spec = a.generator
        kind = "bundled" if "/" not in spec and not Path(spec).exists() else "given"
        self.generator = {"spec": spec, "description": f"{kind} generator `{spec}`"}
        cfg = Path(spec) / "config.json"
        if cfg.is_file():
            meta = json.loads(cfg.read_text())
            self.generator["fit"] = {
                k: meta.get(k)
                for k in ("epochs_done", "train_seconds", "stopped_by_time_budget", "device")
                if k in meta
            }
        return True

    def include_other_gan_rows(self) -> None:
        """``--generator-results``: the finished LASIUM rows of pages a driver wrote with another ``--generator``,
        under keys and labels that name their GAN (:mod:`lasium.repro.other_gan`); nothing of theirs runs here."""
        from .other_gan import rows_from_pages

        if not self.options.generator_results:
            return
        run_generator = self.described_generator(self.generator.get("spec", ""))  # None: a GAN --fit has to fit
        sha = run_generator.get("weights_sha256") if run_generator else None
        rows, stages = rows_from_pages(self.options.generator_results, self.options.sizes, sha, self.results_dir)
        self.rows += rows
        self.stages += stages

    # --- running ----------------------------------------------------------------------------------
    def shards(self, row: Row) -> Path | None:
        """The row's shard set, generating it on first use."""
        key = self.shard_key(row)
        if key in self.made:
            return self.made[key]
        name, args, out = self.gen_stage(row)
        if not self.run(name, "lasium-gen", args, row.key, produces=out / "manifest.json"):
            return None
        self.made[key] = out
        self.clustered = self.clustered or row.source == "cactus"
        if row.source != "real" and row.source not in self.previews:
            png = self.results_dir / f"preview-{row.source}.png"
            if self.run(
                f"preview-{row.source}",
                "lasium-shards",
                ["preview", str(out), "--tasks", str(self.sizes.preview_tasks), "--out", str(png)],
                row.key,
                produces=png,
            ):
                self.previews[row.source] = png.name
        return out

    def mixture_shards(self, row: Row) -> list[Path] | None:
        """A mixture row's shard sets, each generated on first use (or taken from the row that made it)."""
        sets = []
        for part in self.components(row):
            out = self.shards(part)
            if out is None:
                return None
            sets.append(out)
        return sets

    def train(self, row: Row, shards: Path | list[Path]) -> Path | None:
        """Train the row's learner; an interrupted training continues from its latest checkpoint (``--resume``)."""
        name, args, run = self.train_stage(row, shards)
        last = run / "last" / "state.json"
        ok = self.run(name, "lasium-train", args, row.key, produces=last, continue_with=resume_training(run))
        return run if ok else None

    def evaluate(self, row: Row, run: Path | None) -> dict[str, Any] | None:
        """Score the row on the test tasks; an interrupted evaluation keeps the tasks it had scored (``--resume``)."""
        name, args, out = self.eval_stage(row, run)
        ok = self.run(name, "lasium-eval", args, row.key, produces=out, continue_with=resume_evaluation(out))
        return json.loads(out.read_text()) if ok else None

    @property
    def committed_rows(self) -> dict[str, dict[str, Any]]:
        """Finished rows of the committed results pages, by key."""
        return self.committed.rows

    def committed_row(
        self, key: str, commands: dict[str, Any], generator: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """The committed page's finished row ``key`` when it ran these ``commands`` with this ``generator``."""
        return self.committed.matching(key, commands, generator, self.work)

    def reuse_committed(self, row: Row, record: dict[str, Any]) -> bool:
        """With ``--resume``: take the row from the committed results page when it ran the very commands planned now.

        A CPU reproduction spans sessions and the work folder (shards, checkpoints) does not outlive one; the page
        (``results/omniglot.json``) does. Its rows keep their stage commands, so a row is reused only if nothing
        changed. What the row is called and its note are today's (they describe those commands, and may be worded
        better since); its figures, stages and machine are the committed ones.
        """
        earlier = self.committed_row(row.key, record["commands"], record.get("generator"))
        if earlier is None:
            return False
        record.clear()
        record.update(earlier, reused=True, label=row.label, note=row.note)
        for stage in self.committed.stages.get(row.key, []):
            self.stages.append(dict(stage, note="reused from the committed results page"))
        print(
            f"[repro] {row.key}: reused from the committed results ({earlier['eval']['1']['accuracy_pct']:.2f} 1-shot)",
            flush=True,
        )
        return True

    def new_record(self, row: Row) -> dict[str, Any]:
        """The row's record before anything runs: what it is and the commands it plans, appended to the page."""
        record: dict[str, Any] = {
            "key": row.key,
            "label": row.label,
            "algo": row.algo,
            "source": row.source,
            "family": row.family,
            "optional": row.optional,
            "status": "running",
            "note": row.note,
            "settings": self.settings(row) if row.source != "scratch" else {},
            "commands": self.planned_commands(row),
            "work": str(self.work),  # how its commands spell the work folder (a page merges rows of several drivers)
        }
        generator = self.generator_record(row)
        if generator is not None:  # what the row's tasks come from (the page names it; resumes compare it)
            record["generator"] = dict(generator)
        if row.family == "other":  # what --augment auto stands for here (the run's train_config.json confirms it)
            record["augment"] = self.augment_planned(row)
        self.rows.append(record)
        return record

    def note_row(self, row: Row) -> None:
        """``--page-only``: the row from a results page when it holds it with today's commands, else "not run"."""
        record = self.new_record(row)
        if not self.reuse_committed(row, record):
            hours = self.estimate(row) / 3600
            record["status"] = "not run"
            self.stages.append(
                {
                    "name": row.key,
                    "row": row.key,
                    "status": "not run",
                    "seconds": 0.0,
                    "command": "",
                    "note": f"not run yet: --resume --only {row.key}{self.generator_hint(row)} "
                    f"(~{hours:.1f} h estimated)",
                }
            )

    def generator_hint(self, row: Row) -> str:
        """`` --generator NAME ...`` where ``row`` was validated on another generator than this run's, else ""."""
        if not row.validated_with or row.validated_with == self.options.generator:
            return ""
        return (
            f" --generator {row.validated_with}, in a --work and --results of its own (validated on that GAN only; "
            "--generator-results shows it here)"
        )

    def do_row(self, row: Row) -> None:
        record = self.new_record(row)
        if self.options.resume and self.reuse_committed(row, record):
            return
        record["device"] = self.device  # a page resumed across sessions may hold rows of several machines
        remaining, estimate = self.remaining(), self.estimate(row)
        record["estimate_seconds"] = round(estimate, 1)
        if remaining is not None and estimate > remaining:
            record["status"] = "skipped"
            self.stages.append(
                {
                    "name": row.key,
                    "row": row.key,
                    "status": "skipped",
                    "seconds": 0.0,
                    "command": "",
                    "note": f"needs ~{estimate:.0f} s, {max(0.0, remaining):.0f} s left in the budget",
                }
            )
            return
        t0 = time.time()
        run = None
        if row.source != "scratch":
            if self.needs_generator(row) and not self.generator.get("ok", True) and row.generator == "gan":
                record["status"] = "failed (no generator)"
                return
            planned = record.get("generator")
            if planned and planned.get("weights_sha256"):
                self.identities[row.key] = {"generator_sha256": planned["weights_sha256"]}
                self.forget_stale_work(row, planned)
            shards = self.mixture_shards(row) if row.mix else self.shards(row)
            records = (manifest_generator(self.gen_stage(p)[2]) for p in self.components(row) if p.source != "umtra")
            made = [m for m in records if m]
            if made and planned:  # the set's own manifest says what made those very tasks
                record["generator"] = {**planned, **made[0]}
            if isinstance(shards, Path) and row.source in ("umtra", "cactus"):
                record["task_source"] = task_source_summary(shards)
            run = self.train(row, shards) if shards is not None else None
            if run is None:
                record["status"] = "failed"
                return
            record["train"] = train_summary(run)
            # kept in the record (the page outlives the run folder): the curves can be redrawn after a resume
            record["val_curve"] = [list(p) for p in validation_curve(run)]
        evaluation = self.evaluate(row, run)
        record["seconds"] = round(time.time() - t0, 1)
        if evaluation is None:
            record["status"] = "failed"
            return
        record["status"] = "ok"
        record["episode_digest"] = evaluation["episode_digest"]
        record["eval"] = {
            str(r["shots"]): {k: r[k] for k in ("accuracy", "ci95", "accuracy_pct", "ci95_pct", "tasks", "seconds")}
            for r in evaluation["results"]
        }
        record["eval_device"] = evaluation["device"]

    # --- results ----------------------------------------------------------------------------------
    def results(self, protocol: dict[str, Any]) -> dict[str, Any]:
        """The whole record of the run so far: ``omniglot.json`` (the page is rendered from it alone)."""
        from .published import OMNIGLOT_5WAY, TARGETS

        o = self.options
        skipped = [s for s in self.stages if s["status"] == "skipped"]
        if self.device_type != "cuda":
            label = {
                "cpu": "reference budgets, CPU (--sizes cpu)",
                "quick": "reduced configuration, CPU (--quick sizes)",
            }.get(o.sizes, f"reduced configuration, CPU (--sizes {o.sizes})")
        elif o.sizes == "quick":
            label = f"reduced configuration (--quick sizes) on {self.device.get('name')}"
        else:
            label = f"GPU configuration on {self.device.get('name')}" + (
                f"; {len(skipped)} stage(s) skipped by the time budget" if skipped else ""
            )
        # Rows scored on the same number of tasks must share the digest (a shorter run scores a prefix).
        by_count: dict[str, set[str]] = {}
        for r in self.rows:
            if r.get("episode_digest"):
                counts = sorted({str(e["tasks"]) for e in r["eval"].values()})
                by_count.setdefault(",".join(counts), set()).add(r["episode_digest"])
        digests = {d for ds in by_count.values() for d in ds}
        return {
            "format": RESULTS_FORMAT,
            "format_version": 1,
            "label": label,
            "preset": o.sizes,
            "driver_command": o.command_line(),
            "options": o.to_json(),
            "device": self.device,
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(self.start)),
            "wall_seconds": round(time.time() - self.start, 1),
            "stage_seconds": round(sum(st.get("seconds") or 0.0 for st in self.stages), 1),
            "resumed": any("reused" in (st.get("note") or "") for st in self.stages),
            "budget_seconds": o.budget_seconds,
            "sizes": asdict(self.sizes),
            "threads": self.threads or os.environ.get("OMP_NUM_THREADS"),
            "generator": self.generator,
            "protocol": protocol,
            "stages": self.stages,
            "rows": self.rows,
            "episode_digests_equal": all(len(ds) == 1 for ds in by_count.values()),
            "episode_digests_by_tasks": {k: sorted(ds) for k, ds in by_count.items()},
            "episode_digest": next(iter(digests)) if len(digests) == 1 else None,
            "images": {"charts": [], "curves": [], "previews": dict(self.previews)},
            "targets": {k: {str(s): v for s, v in t.items()} for k, t in TARGETS.items()},
            "published": [asdict(p) for p in OMNIGLOT_5WAY],
        }

    def write(self, protocol: dict[str, Any]) -> dict[str, Any]:
        """Draw the charts and write ``omniglot.json`` and ``omniglot.md`` (atomically); return the results."""
        from .omniglot_page import write_page

        return write_page(self.results(protocol), self.results_dir)[0]
