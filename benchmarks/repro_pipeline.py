"""The machinery of ``benchmarks/repro_omniglot.py``: runs each stage as a subprocess (its exact command, log,
status and wall time recorded), enforces the time budget, and writes the results page after every row.

Stage sizes, rows and throughput estimates live in ``repro_omniglot.py``; this module only runs them.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stages import StageRunner  # beside this module (benchmarks/ is sys.path[0] for the drivers)

if TYPE_CHECKING:  # the driver passes its Sizes, rows and rates in; nothing is imported back from it
    import argparse

    from repro_omniglot import Row, Sizes


class Pipeline:
    """Runs the stages, keeps the record, enforces the budget."""

    def __init__(
        self, args: argparse.Namespace, sizes: Sizes, rates: dict[str, float], device_type: str, device: dict[str, Any]
    ) -> None:
        self.args, self.sizes, self.rates, self.device_type, self.device = args, sizes, rates, device_type, device
        self.work, self.results_dir = Path(args.work), Path(args.results)
        self.start = time.time()
        self.deadline = self.start + args.budget_seconds if args.budget_seconds else None
        self.reserve = 10.0 if device_type == "cuda" else 15.0  # for curves, previews' page and the final write
        self.rows: list[dict[str, Any]] = []
        self.generator: dict[str, Any] = {}
        self.made: dict[tuple[str, str], Path] = {}  # shard sets written so far, by shard_key
        self.previews: dict[str, str] = {}
        self.clustered = False  # a CACTUs set was generated in this run: its k-means partitions are cached
        self.env = dict(os.environ)
        self.threads = args.threads
        if (
            self.threads is None
            and args.sizes != "gpu"
            and device_type == "cpu"
            and "OMP_NUM_THREADS" not in os.environ
        ):
            # Tiny tensors on a small shared CPU: one intra-op thread avoids OpenMP spin-waiting (10x faster measured).
            self.threads = 1
        if self.threads:
            self.env.update(OMP_NUM_THREADS=str(self.threads), MKL_NUM_THREADS=str(self.threads))
        self.runner = StageRunner(self.work, self.env, resume=args.resume, remaining=self.remaining)
        self.stages = self.runner.stages
        # rows (and their stages) of the committed results page, for --resume across sessions
        self.committed_rows: dict[str, dict[str, Any]] = {}
        self.committed_stages: dict[str, list[dict[str, Any]]] = {}
        # (plus --reuse-results pages: rows another driver ran in parallel, on the other core, into its own page)
        pages = [self.results_dir / "omniglot.json", *(Path(p) for p in getattr(args, "reuse_results", None) or [])]
        for page in pages if getattr(args, "resume", False) else []:
            committed = json.loads(page.read_text()) if page.is_file() else {}
            if committed.get("preset") != args.sizes:
                continue
            for r in committed.get("rows", []):
                if r.get("status") == "ok" and self.committed_rows.get(r["key"], {}).get("status") != "ok":
                    self.committed_rows[r["key"]] = r
                    self.committed_stages[r["key"]] = [
                        s for s in committed.get("stages", []) if s.get("row") == r["key"]
                    ]

    # --- budget -----------------------------------------------------------------------------------
    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.time() - self.reserve

    def estimate(self, row: Row) -> float:
        """Seconds a row should take (rough; only to decide whether to start it)."""
        s, r = self.sizes, self.rates
        shots = [int(k) for k in s.eval_shots.split(",")]
        if row.algo == "protonets":
            eval_s = r["eval_proto"] * s.eval_tasks * len(shots)
        else:
            eval_s = r["image_step"] * (s.eval_tasks_maml or s.eval_tasks) * s.adapt_steps * 5 * sum(shots)
        total = r["startup"] + eval_s
        if row.source == "scratch":
            return total
        for part in self.components(row):  # the shard sets still to generate (a mixture's may exist already)
            if self.shard_key(part) in self.made:
                continue
            n = self.settings(part)["tasks"]
            rate = r["gen"] if part.source in ("n", "ro", "oc") else r.get(part.source, r.get("real", r["gen"]))
            total += r["startup"] + n / rate
            if part.source == "cactus" and not self.clustered:
                total += r.get("cactus_setup", 0.0)  # the k-means partitions, once per run (then cached)
            if part.source not in self.previews and part.source != "real":
                total += r["startup"] / 2  # lasium-shards preview
        settings = self.settings(row)  # the row's own iterations and meta-batch (ablation rows change them)
        its, mb = settings["iterations"], settings["meta_batch"]
        vals = its // max(1, s.val_every) + 1
        val_s = (
            vals
            * s.val_tasks
            * (r["eval_proto"] if row.algo == "protonets" else r["image_step"] * s.maml_inner_steps * 5)
        )
        return total + r["startup"] + its * mb / r[row.algo] + val_s

    # --- running ----------------------------------------------------------------------------------
    def run(
        self, name: str, console: str, args: list[str], row: str | None = None, produces: Path | None = None
    ) -> bool:
        """One stage through :class:`stages.StageRunner` (its log, record, budget and ``--resume`` reuse)."""
        return self.runner.run(name, console, args, row, produces)

    def common(self) -> list[str]:
        return (["--device", self.args.device] if self.args.device != "auto" else []) + (
            ["--data-root", self.args.data_root] if self.args.data_root else []
        )

    # --- stages -----------------------------------------------------------------------------------
    def prepare_generator(self) -> bool:
        a, s = self.args, self.sizes
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

    def settings(self, row: Row) -> dict[str, Any]:
        """What the row generates, trains and evaluates with: the preset's sizes, then the row's overrides."""
        s = self.sizes
        protonets = row.algo == "protonets"
        base = {
            "tasks": s.gen_tasks_real
            if row.source == "real"
            else (s.gen_tasks_protonets if protonets else s.gen_tasks_maml),
            "iterations": s.protonets_iterations if protonets else s.maml_iterations,
            "meta_batch": s.protonets_meta_batch if protonets else s.maml_meta_batch,
            "augment": s.augment,
            "param": None,
            "precision": None,
        }
        settings = {**base, **row.overrides}
        if row.mix:  # the sets it mixes, each the one the row of that source (same learner) generates
            settings["mixture"] = [
                {"source": source, "weight": weight, "shards": self.gen_stage(part)[2].name}
                for (source, weight), part in zip(row.mix, self.components(row))
            ]
        if settings["param"] is not None and row.source in ("n", "ro", "oc"):
            from lasium.generate.synthesis.strategies import default_parameter

            if settings["param"] == default_parameter(row.source, "gan", self.preset_of(row)):
                settings["param"] = None  # the preset's own value: the same shard set as the main rows'
        return settings

    # --- planning: every stage's exact command, without running it --------------------------------
    def gen_stage(self, row: Row) -> tuple[str, list[str], Path]:
        """(stage name, lasium-gen arguments, shard folder) of the row's shard set."""
        s, a = self.sizes, self.args
        preset = self.preset_of(row)
        n, param = self.settings(row)["tasks"], self.settings(row)["param"]
        name = "real" if row.source == "real" else f"{row.source}-{preset}"
        if "tasks" in row.overrides or param is not None:  # ablation sets: not the preset's
            name += f"-{n}" + (f"-p{param:g}" if param is not None else "")
        out = self.work / "shards" / name
        common = [
            "--tasks-per-shard",
            str(s.tasks_per_shard),
            "--workers",
            str(s.gen_workers),
            "--seed",
            str(a.seed),
            "--out",
            str(out),
            "--quiet",
        ]
        if row.mix:
            raise ValueError(f"{row.key} mixes other rows' shard sets and generates none of its own")
        if row.source in ("umtra", "cactus"):
            # The source's defaults (UMTRA: erase 0.5, shift 6; CACTUs: the bundled VAE's posterior mean, k 500, P 100),
            # as its authors used it; only the task layout and the counts are the driver's.
            args = (
                [
                    "--source",
                    row.source,
                    "--dataset",
                    "omniglot",
                    "--n-tasks",
                    str(n),
                    "--shots",
                    "1",
                    "--queries",
                    "5",
                ]
                + common
                + (["--data-root", a.data_root] if a.data_root else [])
                + (["--device", a.device] if a.device != "auto" else [])
            )
        elif row.source == "real":
            args = (
                [
                    "--source",
                    "real",
                    "--dataset",
                    "omniglot",
                    "--split",
                    "train",
                    "--n-tasks",
                    str(n),
                    "--shots",
                    "1",
                    "--queries",
                    "5",
                ]
                + common
                + (["--data-root", a.data_root] if a.data_root else [])
            )
        else:
            args = [
                "--strategy",
                row.source,
                "--n-tasks",
                str(n),
                "--generator",
                self.generator["spec"],
                "--preset",
                preset,
                "--shots",
                "1",
                "--queries",
                "5",
                "--decode-tasks",
                str(s.decode_tasks),
                "--precision",
                s.gen_precision,
            ] + common
            if param is not None:
                args += ["--sigma" if row.source == "n" else "--alpha", f"{param:g}"]
            args += ["--device", a.device] if a.device != "auto" else []
        return f"gen-{out.name}", args, out

    def train_stage(self, row: Row, shards: Path | list[Path]) -> tuple[str, list[str], Path]:
        """(stage name, lasium-train arguments, run folder); a mixture row gets ``--shards SET:WEIGHT`` per set."""
        s, a = self.sizes, self.args
        settings = self.settings(row)
        its, mb = settings["iterations"], settings["meta_batch"]
        run = self.work / "runs" / row.key
        if row.mix:
            assert isinstance(shards, list) and len(shards) == len(row.mix)
            sources = [arg for (_, w), path in zip(row.mix, shards) for arg in ("--shards", f"{path}:{w:g}")]
        else:
            sources = ["--shards", str(shards)]
        args = [
            *sources,
            "--algo",
            row.algo,
            "--iterations",
            str(its),
            "--meta-batch",
            str(mb),
            "--augment",
            settings["augment"],
            *self.precision_args(row, "train"),
            "--inner-steps",
            str(s.maml_inner_steps),
            "--val-every",
            str(s.val_every),
            "--val-tasks",
            str(s.val_tasks),
            "--workers",
            str(s.train_workers),
            "--checkpoint-every",
            "0",
            "--log-every",
            str(max(1, min(50, its // 10))),
            "--seed",
            str(a.seed),
            "--out",
            str(run),
            "--quiet",
        ] + self.common()
        return f"train-{row.key}", args, run

    def eval_stage(self, row: Row, run: Path | None) -> tuple[str, list[str], Path]:
        s, a = self.sizes, self.args
        out = self.work / "evals" / f"{row.key}.json"
        target = (
            ["--checkpoint", str(run)]
            if run is not None
            else ["--baseline", "scratch", "--algo", row.algo, "--init-seed", str(a.seed)]
        )
        tasks = s.eval_tasks_maml if row.algo != "protonets" and s.eval_tasks_maml else s.eval_tasks
        args = (
            target
            + [
                "--shots",
                s.eval_shots,
                "--tasks",
                str(tasks),
                "--seed",
                str(a.eval_seed),
                *self.precision_args(row, "eval"),
                "--adapt-steps",
                str(s.adapt_steps),
                "--adapt-lr",
                str(s.adapt_lr),
                "--out",
                str(out),
                "--quiet",
            ]
            + self.common()
        )
        return f"eval-{row.key}", args, out

    def planned_commands(self, row: Row) -> dict[str, str]:
        """The row's stage commands as they would run now (what a committed row is compared against)."""
        planned: dict[str, str] = {}
        run = None
        if row.mix:  # one generation per mixed set (the same commands as those sets' own rows)
            sets = []
            for part in self.components(row):
                name, args, out = self.gen_stage(part)
                planned[f"gen-{out.name}"] = shlex.join(["lasium-gen"] + args)
                sets.append(out)
            name, args, run = self.train_stage(row, sets)
            planned["train"] = shlex.join(["lasium-train"] + args)
        elif row.source != "scratch":
            name, args, shards = self.gen_stage(row)
            planned["gen"] = shlex.join(["lasium-gen"] + args)
            name, args, run = self.train_stage(row, shards)
            planned["train"] = shlex.join(["lasium-train"] + args)
        planned["eval"] = shlex.join(["lasium-eval"] + self.eval_stage(row, run)[1])
        return planned

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

    @staticmethod
    def components(row: Row) -> list[Row]:
        """The rows whose shard sets ``row`` trains on: itself, or a mixture's sources with its learner."""
        if not row.mix:
            return [row]
        return [replace(row, source=source, mix=()) for source, _ in row.mix]  # its stages are the row's own

    def needs_generator(self, row: Row) -> bool:
        return any(part.source in ("n", "ro", "oc") for part in self.components(row))

    def augment_planned(self, row: Row) -> str | None:
        """What ``--augment`` resolves to for the row's shards (as ``lasium-train`` decides it: ``ShardSet.generated``)."""
        if row.source == "scratch":
            return None
        from lasium.train.augment import resolve_preset

        generated = all(part.source in ("n", "ro", "oc") for part in self.components(row))
        return resolve_preset(self.settings(row)["augment"], generated=generated)

    @staticmethod
    def preset_of(row: Row) -> str:
        return "protonets" if row.algo == "protonets" else "maml"

    def shard_key(self, row: Row) -> tuple[Any, ...]:
        """Real tasks serve both learners; synthetic ones depend on the learner's σ/α preset (and an ablation's own sizes)."""
        settings = self.settings(row)
        if row.source == "real":
            return (row.source, "", settings["tasks"], None)
        return (row.source, self.preset_of(row), settings["tasks"], settings["param"])

    def precision_args(self, row: Row, stage: str) -> list[str]:
        chosen = self.settings(row)["precision"] or (
            self.sizes.train_precision if stage == "train" else self.sizes.eval_precision
        )
        return ["--precision", chosen]

    def train(self, row: Row, shards: Path | list[Path]) -> Path | None:
        name, args, run = self.train_stage(row, shards)
        return run if self.run(name, "lasium-train", args, row.key, produces=run / "last" / "state.json") else None

    def evaluate(self, row: Row, run: Path | None) -> dict[str, Any] | None:
        name, args, out = self.eval_stage(row, run)
        return json.loads(out.read_text()) if self.run(name, "lasium-eval", args, row.key, produces=out) else None

    def reuse_committed(self, row: Row, record: dict[str, Any]) -> bool:
        """With ``--resume``: take the row from the committed results page when it ran the very commands planned now.

        A CPU reproduction spans sessions and the work folder (shards, checkpoints) does not outlive one; the page
        (``results/omniglot.json``) does. Its rows keep their stage commands, so a row is reused only if nothing changed.
        """
        earlier = self.committed_rows.get(row.key)
        if not earlier or earlier.get("status") != "ok" or earlier.get("commands") != record["commands"]:
            return False
        record.clear()
        record.update(earlier, reused=True)
        for stage in self.committed_stages.get(row.key, []):
            self.stages.append(dict(stage, note="reused from the committed results page"))
        print(
            f"[repro] {row.key}: reused from the committed results ({earlier['eval']['1']['accuracy_pct']:.2f} 1-shot)",
            flush=True,
        )
        return True

    def do_row(self, row: Row) -> None:
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
        }
        if row.family == "other":  # what --augment auto stands for here (the run's train_config.json confirms it)
            record["augment"] = self.augment_planned(row)
        self.rows.append(record)
        if self.args.resume and self.reuse_committed(row, record):
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
            if self.needs_generator(row) and not self.generator.get("ok", True):
                record["status"] = "failed (no generator)"
                return
            shards = self.mixture_shards(row) if row.mix else self.shards(row)
            if shards is not None and row.source in ("umtra", "cactus"):
                record["task_source"] = task_source_summary(shards)
            run = self.train(row, shards) if shards is not None else None
            if run is None:
                record["status"] = "failed"
                return
            record["train"] = train_summary(run)
            from plots import validation_curves

            # kept in the record (the page outlives the run folder): the curves can be redrawn after a resume
            record["val_curve"] = [list(p) for p in validation_curves({row.key: run}).get(row.key, [])]
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
        from published import OMNIGLOT_5WAY, TARGETS

        a = self.args
        skipped = [s for s in self.stages if s["status"] == "skipped"]
        if self.device_type != "cuda":
            label = "reduced configuration, CPU" + (" (--quick sizes)" if a.quick else f" (--sizes {a.sizes})")
        elif a.quick:
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
            "format": "lasium-repro-omniglot",
            "format_version": 1,
            "label": label,
            "preset": a.sizes,
            "driver_command": shlex.join(
                [sys.executable.rsplit("/", 1)[-1], "benchmarks/repro_omniglot.py"] + sys.argv[1:]
            ),
            "device": self.device,
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(self.start)),
            "wall_seconds": round(time.time() - self.start, 1),
            "stage_seconds": round(sum(st.get("seconds") or 0.0 for st in self.stages), 1),
            "resumed": any("reused" in (st.get("note") or "") for st in self.stages),
            "budget_seconds": a.budget_seconds,
            "sizes": asdict(self.sizes),
            "threads": self.threads or os.environ.get("OMP_NUM_THREADS"),
            "generator": self.generator,
            "protocol": protocol,
            "stages": self.stages,
            "rows": self.rows,
            "episode_digests_equal": all(len(ds) == 1 for ds in by_count.values()),
            "episode_digests_by_tasks": {k: sorted(ds) for k, ds in by_count.items()},
            "episode_digest": next(iter(digests)) if len(digests) == 1 else None,
            "images": self.images(),
            "targets": {k: {str(s): v for s, v in t.items()} for k, t in TARGETS.items()},
            "published": [asdict(p) for p in OMNIGLOT_5WAY],
        }

    def images(self) -> dict[str, Any]:
        return {
            "curves": [n for n in ("curves-protonets.png", "curves-maml.png") if (self.results_dir / n).is_file()],
            "previews": dict(self.previews),
        }

    def draw_curves(self) -> None:
        from plots import line_chart

        for algo, name in (("protonets", "curves-protonets.png"), ("maml", "curves-maml.png")):
            series = {
                r["key"]: [tuple(p) for p in r["val_curve"]]
                for r in self.rows
                if r.get("val_curve")
                and r.get("family") != "ablation"
                and (r["algo"] == "protonets") == (algo == "protonets")
            }
            if series:
                line_chart(
                    series,
                    self.results_dir / name,
                    title=f"{'ProtoNets' if algo == 'protonets' else 'MAML'}: validation "
                    "accuracy (Omniglot val, 5-way 1-shot)",
                    xlabel="iteration",
                    ylabel="accuracy",
                )

    def write(self, protocol: dict[str, Any]) -> None:
        from repro_report import render_markdown

        from lasium.evaluate.report import write_json_atomic
        from lasium.safe_io import replace_atomically

        results = self.results(protocol)
        write_json_atomic(self.results_dir / "omniglot.json", results)
        replace_atomically(self.results_dir / "omniglot.md", lambda tmp: tmp.write_text(render_markdown(results)))


def train_summary(run: Path) -> dict[str, Any]:
    """Steps, tasks seen and best validation accuracy of a finished run (from its checkpoints' JSON)."""
    out: dict[str, Any] = {}
    for name in ("last", "best"):
        try:
            state = json.loads((run / name / "state.json").read_text())
        except (OSError, ValueError):
            continue
        if name == "last":
            out.update(step=state.get("step"), tasks_seen=state.get("tasks_seen"), precision=state.get("precision"))
        out.update(
            best_val_accuracy=state.get("best_val_accuracy"), best_step=state.get("best_step", out.get("best_step"))
        )
    try:
        cfg = json.loads((run / "train_config.json").read_text())
        out.update(
            algo=cfg.get("algo"),
            meta_batch=cfg.get("meta_batch"),
            iterations=cfg.get("iterations"),
            augment=cfg.get("augment"),
        )
        if (cfg.get("mixture") or {}).get("sampling") == "weighted":  # a mixture row: the weights the run drew by
            out["mixture"] = cfg["mixture"]
    except (OSError, ValueError):
        pass
    return out


def task_source_summary(shards: Path) -> dict[str, Any]:
    """The parts of a UMTRA or CACTUs set's manifest ``source`` record the page shows (method, embedding, clustering)."""
    try:
        source = json.loads((shards / "manifest.json").read_text()).get("source") or {}
    except (OSError, ValueError):
        return {}
    out: dict[str, Any] = {k: source[k] for k in ("kind", "method", "augmentation") if k in source}
    embedding = source.get("embedding")
    if isinstance(embedding, dict):
        generator = embedding.get("generator") or {}
        out["embedding"] = {
            "kind": embedding.get("kind"),
            "dim": embedding.get("dim"),
            **({"generator": generator.get("name")} if isinstance(generator, dict) and generator.get("name") else {}),
        }
    clustering = source.get("clustering")
    if isinstance(clustering, dict):
        out["clustering"] = {k: clustering.get(k) for k in ("clusters", "partitions", "scaling")}
    if "kept_clusters" in source:
        out["kept_clusters"] = source["kept_clusters"]
    return out


def describe_device(option: str) -> tuple[str, dict[str, Any]]:
    import platform

    import torch

    use_cuda = option.startswith("cuda") or (option == "auto" and torch.cuda.is_available())
    if use_cuda:
        return "cuda", {
            "type": "cuda",
            "name": torch.cuda.get_device_name(0),
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
        }
    from lasium.precision import cpu_has_native_bf16

    try:  # the model name says more than the architecture (rows of one page may run on different CPUs)
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or platform.machine()
    return "cpu", {
        "type": "cpu",
        "name": model,
        "cores": os.cpu_count(),
        "native_bf16": cpu_has_native_bf16(),  # what --precision auto means there: bf16 if true, else fp32
        "torch": torch.__version__,
    }
