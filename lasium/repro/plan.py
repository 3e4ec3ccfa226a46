"""Every stage's exact command of a reproduction row, planned without running anything, and the row's estimated
time: the half of :class:`lasium.repro.pipeline.Pipeline` that ``--plan``, ``--resume`` (a committed row is reused
only when today's commands equal its own) and the budget guard need.

The commands are the compatibility contract of a work folder and of a results page: a stage (or a row) is reused
only when its recorded command equals the planned one (up to :data:`~lasium.repro.stages.NOT_DEFINING` options and
the spelling of the work folder), so any change here makes earlier work run again."""

from __future__ import annotations

import shlex
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .progress import EVAL_RESUMES, eval_progress, gen_progress, stage_left, train_progress
from .sizes import RATES, scoring_seconds, training_seconds

if TYPE_CHECKING:
    from .options import OmniglotOptions
    from .rows import Row
    from .sizes import Sizes


class StagePlanner:
    """Commands and estimates of rows; :class:`~lasium.repro.pipeline.Pipeline` sets these attributes and runs them."""

    options: OmniglotOptions
    sizes: Sizes
    rates: dict[str, float]
    device_type: str
    work: Path
    results_dir: Path
    generator: dict[str, Any]
    made: dict[tuple[str, str], Path]
    previews: dict[str, str]
    clustered: bool

    def common(self) -> list[str]:
        o = self.options
        device = ["--device", o.device] if o.device != "auto" else []
        return device + (["--data-root", o.data_root] if o.data_root else [])

    def settings(self, row: Row) -> dict[str, Any]:
        """What the row generates, trains and evaluates with: the preset's sizes, then the row's overrides."""
        iterations, meta_batch, _ = self.sizes.learner_budget(row.algo)
        base = {
            "tasks": self.preset_tasks(row),
            "iterations": iterations,
            "meta_batch": meta_batch,
            "augment": self.sizes.augment,
            "param": None,
            "precision": None,
            "ways": None,  # N of the generated training tasks (None: 5, the benchmark's)
            "epsilon": None,  # lasium-gen --epsilon (None: its default)
            "lr_schedule": None,  # lasium-train --lr-schedule (None: its default, a constant rate)
            "distance": None,  # lasium-train --distance (None: its default, the squared Euclidean distance)
        }
        settings = {**base, **row.overrides}
        if row.mix:  # the sets it mixes, each the one the row of that source (same learner) generates
            settings["mixture"] = [
                {"source": source, "weight": weight, "shards": self.gen_stage(part)[2].name}
                for (source, weight), part in zip(row.mix, self.components(row))
            ]
        if settings["param"] is not None and row.source in ("n", "ro", "oc"):
            from lasium.generate import default_parameter

            if settings["param"] == default_parameter(row.source, row.generator, self.preset_of(row)):
                settings["param"] = None  # the preset's own value: the same shard set as the main rows'
        return settings

    def preset_tasks(self, row: Row) -> int:
        """Tasks the preset generates for the row's source and learner (before the row's overrides)."""
        if row.source == "real":
            return self.sizes.gen_tasks_real
        return self.sizes.learner_budget(row.algo)[2]

    def gen_stage(self, row: Row) -> tuple[str, list[str], Path]:
        """(stage name, lasium-gen arguments, shard folder) of the row's shard set."""
        s, a = self.sizes, self.options
        preset = self.preset_of(row)
        settings = self.settings(row)
        n, param, ways, epsilon = settings["tasks"], settings["param"], settings["ways"], settings["epsilon"]
        name = "real" if row.source == "real" else f"{row.source}-{preset}"
        # Ablation sets differ from the preset's in size or σ/α; one that differs in neither is the main rows' set,
        # generated once (the same command, folder and stage).
        if n != self.preset_tasks(row) or param is not None:
            name += f"-{n}" + (f"-p{param:g}" if param is not None else "")
        if ways is not None:  # wider training tasks (and the anchor separation they need)
            name += f"-w{ways}" + (f"-e{epsilon:g}" if epsilon is not None else "")
        if row.generator != "gan":  # a VAE row's set (the GAN rows' names are those of every earlier work folder)
            name += f"-{row.generator}"
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
                self.generator_spec(row),
                "--tuned-for",
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
            if ways is not None:
                args += ["--ways", str(ways)] + (["--epsilon", f"{epsilon:g}"] if epsilon is not None else [])
            args += ["--device", a.device] if a.device != "auto" else []
            if row.generator == "vae" and a.data_root:  # a VAE encodes real train images as its anchors
                args += ["--data-root", a.data_root]
        return f"gen-{out.name}", args, out

    def train_stage(self, row: Row, shards: Path | list[Path]) -> tuple[str, list[str], Path]:
        """(stage name, lasium-train arguments, run folder); a mixture row gets ``--shards SET:WEIGHT`` per set."""
        s, a = self.sizes, self.options
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
            *(["--lr-schedule", settings["lr_schedule"]] if settings["lr_schedule"] else []),
            *(["--distance", settings["distance"]] if settings["distance"] else []),
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
            str(s.checkpoint_every),
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
        s, a = self.sizes, self.options
        out = self.work / "evals" / f"{row.key}.json"
        # an annealed run is scored at its end (last/), the model its schedule was for, not at best/: that is picked
        # mid-run by the trainer's own validation, on tasks of the training N (results/levers/steps-*-cosine)
        annealed = run is not None and self.settings(row)["lr_schedule"] not in (None, "constant")
        target = (
            ["--checkpoint", str(run / "last" if annealed else run)]
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
            + (["--workers", str(a.eval_workers)] if a.eval_workers > 1 else [])
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

    @staticmethod
    def components(row: Row) -> list[Row]:
        """The rows whose shard sets ``row`` trains on: itself, or a mixture's sources with its learner."""
        if not row.mix:
            return [row]
        return [replace(row, source=source, mix=()) for source, _ in row.mix]  # its stages are the row's own

    def generator_spec(self, row: Row) -> str:
        """What ``lasium-gen --generator`` is given for a LASIUM row: the run's GAN, or ``--vae`` for a VAE row."""
        return self.options.vae if row.generator == "vae" else self.generator["spec"]

    def needs_generator(self, row: Row) -> bool:
        return any(part.source in ("n", "ro", "oc") for part in self.components(row))

    def augment_planned(self, row: Row) -> str | None:
        """What ``--augment`` resolves to for the row's shards (as ``lasium-train`` decides: ``ShardSet.generated``)."""
        if row.source == "scratch":
            return None
        from lasium.train import resolve_preset

        generated = all(part.source in ("n", "ro", "oc") for part in self.components(row))
        return resolve_preset(self.settings(row)["augment"], generated=generated)

    @staticmethod
    def preset_of(row: Row) -> str:
        return "protonets" if row.algo == "protonets" else "maml"

    def shard_key(self, row: Row) -> tuple[Any, ...]:
        """Real tasks serve both learners; synthetic ones depend on the learner's σ/α preset (and ablation sizes)."""
        settings = self.settings(row)
        if row.source == "real":
            return (row.source, "", settings["tasks"], None)
        return (row.source, self.preset_of(row), settings["tasks"], settings["param"], row.generator)

    def precision_args(self, row: Row, stage: str) -> list[str]:
        chosen = self.settings(row)["precision"] or (
            self.sizes.train_precision if stage == "train" else self.sizes.eval_precision
        )
        return ["--precision", chosen]

    def row_rates(self, row: Row) -> dict[str, float]:
        """The throughputs of a row's stages: the pipeline's, except that a row in fp32 (the ablation's earlier
        configuration) on a CPU estimated at native bf16's rates (``RATES["cpu-bf16"]``) gets the fp32 CPU's."""
        if self.settings(row)["precision"] == "fp32" and self.rates is RATES["cpu-bf16"]:
            return RATES["cpu"]
        return self.rates

    def estimate(self, row: Row) -> float:
        """Seconds a row should still take (rough; to decide whether to start it, and for ``--plan``): the sum of
        :meth:`stage_estimates`."""
        return sum(stage["seconds"] for stage in self.stage_estimates(row))

    def stage_estimates(self, row: Row) -> list[dict[str, Any]]:
        """Each stage the row still runs: ``{"name", "console", "seconds", "resumes"}`` (``resumes``: what an
        interrupted run of it keeps, so a stage longer than one sitting continues where it stopped).

        Work already in ``--work`` counts: stages that finished, the shards a generation already wrote, the
        steps up to a training's latest checkpoint and the tasks an evaluation already scored (what ``--resume``
        continues from)."""
        s, r = self.sizes, self.row_rates(row)
        stages: list[dict[str, Any]] = []
        if row.source != "scratch":
            for part in self.components(row):  # the shard sets still to generate (a mixture's may exist already)
                if self.shard_key(part) in self.made:
                    continue
                n = self.settings(part)["tasks"]
                name, args, shards = self.gen_stage(part)
                left = self.left(name, "lasium-gen", args, gen_progress(shards, n), keeps_own=True)
                rate = r["gen"] if part.source in ("n", "ro", "oc") else r.get(part.source, r.get("real", r["gen"]))
                width = (self.settings(part)["ways"] or 5) / 5  # classes per task against the rates' 5-way tasks
                seconds = (r["startup"] + n * width / rate) * left
                if part.source == "cactus" and not self.clustered and left:
                    seconds += r.get("cactus_setup", 0.0)  # the k-means partitions, once per run (then cached)
                if part.source not in self.previews and part.source != "real":
                    seconds += r["startup"] / 2  # lasium-shards preview
                resumes = f"keeps its complete shards ({s.tasks_per_shard:,} tasks each)"
                stages.append(dict(name=name, console="lasium-gen", seconds=seconds, resumes=resumes))
            settings = self.settings(row)  # the row's own iterations and meta-batch (ablation rows change them)
            its, mb = settings["iterations"], settings["meta_batch"]
            vals = its // max(1, s.val_every) + 1
            val_s = (
                vals
                * s.val_tasks
                * (r["eval_proto"] if row.algo == "protonets" else r["image_step"] * s.maml_inner_steps * 5)
            )
            sets = [self.gen_stage(part)[2] for part in self.components(row)]
            name, args, run = self.train_stage(row, sets if row.mix else sets[0])
            left = self.left(name, "lasium-train", args, train_progress(run, its))
            every = f"every {s.checkpoint_every:,} steps" if s.checkpoint_every else "at its end only"
            stages.append(
                dict(
                    name=name,
                    console="lasium-train",
                    seconds=(r["startup"] + training_seconds(r, row.algo, its * mb, settings["ways"] or 5) + val_s)
                    * left,
                    resumes=f"continues exactly from its latest checkpoint ({every})",
                )
            )
        shots = [int(k) for k in s.eval_shots.split(",")]
        name, args, out = self.eval_stage(row, None if row.source == "scratch" else self.work / "runs" / row.key)
        tasks = s.eval_tasks if row.algo == "protonets" else (s.eval_tasks_maml or s.eval_tasks)
        eval_s = scoring_seconds(r, row.algo, tasks, shots, s.adapt_steps)
        left = self.left(name, "lasium-eval", args, eval_progress(out))
        stages.append(
            dict(
                name=name,
                console="lasium-eval",
                seconds=r["startup"] + eval_s * left,
                resumes=EVAL_RESUMES,
            )
        )
        return stages

    def left(self, name: str, console: str, args: list[str], progress: float, *, keeps_own: bool = False) -> float:
        """:func:`~lasium.repro.progress.stage_left` in this run's work folder."""
        return stage_left(self.work, name, console, args, progress, keeps_own=keeps_own)
