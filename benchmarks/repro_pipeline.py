"""The machinery of ``benchmarks/repro_omniglot.py``: runs each stage as a subprocess (its exact command, log,
status and wall time recorded), enforces the time budget, and writes the results page after every row.

Stage sizes, rows and throughput estimates live in ``repro_omniglot.py``; this module only runs them.
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
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the driver passes its Sizes, rows and rates in; nothing is imported back from it
    import argparse

    from repro_omniglot import Row, Sizes

CONSOLE_MODULES = {"lasium-fit": "lasium.generate.models.fit_cli", "lasium-gen": "lasium.generate.job.cli",
                   "lasium-train": "lasium.train.cli", "lasium-eval": "lasium.evaluate.cli", "lasium-shards": "lasium.shards.cli"}


def tool(name: str) -> list[str]:
    """The console script when installed on PATH, else the same entry point through this Python."""
    exe = shutil.which(name)
    if exe:
        return [exe]
    return [sys.executable, "-c", f"import sys; sys.argv[0] = {name!r}; from {CONSOLE_MODULES[name]} import main; main()"]


class Pipeline:
    """Runs the stages, keeps the record, enforces the budget."""

    def __init__(self, args: argparse.Namespace, sizes: Sizes, rates: dict[str, float], device_type: str,
                 device: dict[str, Any]) -> None:
        self.args, self.sizes, self.rates, self.device_type, self.device = args, sizes, rates, device_type, device
        self.work, self.results_dir = Path(args.work), Path(args.results)
        self.start = time.time()
        self.deadline = self.start + args.budget_seconds if args.budget_seconds else None
        self.reserve = 10.0 if device_type == "cuda" else 15.0  # for curves, previews' page and the final write
        self.stages: list[dict[str, Any]] = []
        self.rows: list[dict[str, Any]] = []
        self.generator: dict[str, Any] = {}
        self.made: dict[tuple[str, str], Path] = {}  # shard sets written so far, by shard_key
        self.previews: dict[str, str] = {}
        self.env = dict(os.environ)
        self.threads = args.threads
        if self.threads is None and args.sizes != "gpu" and device_type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
            # Tiny tensors on a small shared CPU: one intra-op thread avoids OpenMP spin-waiting (10x faster measured).
            self.threads = 1
        if self.threads:
            self.env.update(OMP_NUM_THREADS=str(self.threads), MKL_NUM_THREADS=str(self.threads))

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
        n = s.gen_tasks_real if row.source == "real" else (s.gen_tasks_protonets if row.algo == "protonets" else s.gen_tasks_maml)
        if self.shard_key(row) not in self.made:
            total += r["startup"] + n / r["real" if row.source == "real" else "gen"]
            if row.source not in self.previews and row.source != "real":
                total += r["startup"] / 2  # lasium-shards preview
        its, mb = (s.protonets_iterations, s.protonets_meta_batch) if row.algo == "protonets" else (s.maml_iterations, s.maml_meta_batch)
        vals = its // max(1, s.val_every) + 1
        val_s = vals * s.val_tasks * (r["eval_proto"] if row.algo == "protonets" else r["image_step"] * s.maml_inner_steps * 5)
        return total + r["startup"] + its * mb / r[row.algo] + val_s

    # --- running ----------------------------------------------------------------------------------
    def run(self, name: str, console: str, args: list[str], row: str | None = None, produces: Path | None = None) -> bool:
        """Run one command with its output in logs/<name>.log; record it; False if it failed or timed out.

        A stage that succeeded leaves ``logs/<name>.done.json``; with ``--resume`` a stage whose identical command
        already succeeded (and whose output ``produces`` still exists) is not run again, and its earlier record
        (wall time included) is kept, marked as reused.
        """
        display = shlex.join([console] + args)
        done_path = self.work / "logs" / f"{name}.done.json"
        if self.args.resume and done_path.is_file() and (produces is None or produces.exists()):
            earlier = json.loads(done_path.read_text())
            if earlier.get("command") == display and earlier.get("status") == "ok":
                earlier["note"] = "reused from an earlier invocation of the driver"
                self.stages.append(earlier)
                print(f"[repro] {name}: reused ({earlier['seconds']:.1f} s earlier)", flush=True)
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
        print(f"[repro] {name}: {display}", flush=True)
        t0 = time.time()
        with open(log_path, "w") as log:
            proc = subprocess.Popen(tool(console) + args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=self.env)
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
        print(f"[repro] {name}: {record['status']} in {record['seconds']:.1f} s", flush=True)
        return rc == 0

    def common(self) -> list[str]:
        return (["--device", self.args.device] if self.args.device != "auto" else []) + \
               (["--data-root", self.args.data_root] if self.args.data_root else [])

    # --- stages -----------------------------------------------------------------------------------
    def prepare_generator(self) -> bool:
        a, s = self.args, self.sizes
        if a.fit:
            out = self.work / "gan"
            args = ["--model", "gan", "--dataset", "omniglot", "--epochs", str(s.fit_epochs), "--max-minutes", str(s.fit_minutes),
                    "--seed", str(a.seed), "--out", str(out), "--quiet"] + (["--limit", str(s.fit_limit)] if s.fit_limit else [])
            args += (["--device", a.device] if a.device in ("cpu", "cuda") else []) + (["--data-root", a.data_root] if a.data_root else [])
            ok = self.run("fit-gan", "lasium-fit", args)
            self.generator = {"spec": str(out), "description": f"GAN fitted by this run ({s.fit_minutes} min budget, `{out}`)"}
            return ok
        spec = a.generator
        kind = "bundled" if "/" not in spec and not Path(spec).exists() else "given"
        self.generator = {"spec": spec, "description": f"{kind} generator `{spec}`"}
        cfg = Path(spec) / "config.json"
        if cfg.is_file():
            meta = json.loads(cfg.read_text())
            self.generator["fit"] = {k: meta.get(k) for k in ("epochs_done", "train_seconds", "stopped_by_time_budget", "device") if k in meta}
        return True

    def shards(self, row: Row) -> Path | None:
        """The row's shard set, generating it on first use."""
        s, a = self.sizes, self.args
        preset = self.preset_of(row)
        key = self.shard_key(row)
        if key in self.made:
            return self.made[key]
        out = self.work / "shards" / ("real" if row.source == "real" else f"{row.source}-{preset}")
        common = ["--tasks-per-shard", str(s.tasks_per_shard), "--workers", str(s.gen_workers), "--seed", str(a.seed), "--out", str(out), "--quiet"]
        if row.source == "real":
            args = ["--source", "real", "--dataset", "omniglot", "--split", "train", "--n-tasks", str(s.gen_tasks_real),
                    "--shots", "1", "--queries", "5"] + common + (["--data-root", a.data_root] if a.data_root else [])
        else:
            n = s.gen_tasks_protonets if row.algo == "protonets" else s.gen_tasks_maml
            args = ["--strategy", row.source, "--n-tasks", str(n), "--generator", self.generator["spec"], "--preset", preset,
                    "--shots", "1", "--queries", "5", "--decode-tasks", str(s.decode_tasks), "--precision", s.gen_precision] + common
            args += ["--device", a.device] if a.device != "auto" else []
        if not self.run(f"gen-{out.name}", "lasium-gen", args, row.key, produces=out / "manifest.json"):
            return None
        self.made[key] = out
        if row.source != "real" and row.source not in self.previews:
            png = self.results_dir / f"preview-{row.source}.png"
            if self.run(f"preview-{row.source}", "lasium-shards", ["preview", str(out), "--tasks", str(s.preview_tasks), "--out", str(png)],
                        row.key, produces=png):
                self.previews[row.source] = png.name
        return out

    @staticmethod
    def preset_of(row: Row) -> str:
        return "protonets" if row.algo == "protonets" else "maml"

    def shard_key(self, row: Row) -> tuple[str, str]:
        """Real tasks serve both learners; synthetic ones depend on the learner's σ/α preset."""
        return (row.source, "") if row.source == "real" else (row.source, self.preset_of(row))

    def train(self, row: Row, shards: Path) -> Path | None:
        s, a = self.sizes, self.args
        its, mb = (s.protonets_iterations, s.protonets_meta_batch) if row.algo == "protonets" else (s.maml_iterations, s.maml_meta_batch)
        run = self.work / "runs" / row.key
        args = ["--shards", str(shards), "--algo", row.algo, "--iterations", str(its), "--meta-batch", str(mb),
                "--inner-steps", str(s.maml_inner_steps), "--val-every", str(s.val_every), "--val-tasks", str(s.val_tasks),
                "--workers", str(s.train_workers), "--checkpoint-every", "0", "--log-every", str(max(1, min(50, its // 10))),
                "--seed", str(a.seed), "--out", str(run), "--quiet"] + self.common()
        return run if self.run(f"train-{row.key}", "lasium-train", args, row.key, produces=run / "last" / "state.json") else None

    def evaluate(self, row: Row, run: Path | None) -> dict[str, Any] | None:
        s, a = self.sizes, self.args
        out = self.work / "evals" / f"{row.key}.json"
        target = ["--checkpoint", str(run)] if run is not None else ["--baseline", "scratch", "--algo", row.algo, "--init-seed", str(a.seed)]
        tasks = s.eval_tasks_maml if row.algo != "protonets" and s.eval_tasks_maml else s.eval_tasks
        args = target + ["--shots", s.eval_shots, "--tasks", str(tasks), "--seed", str(a.eval_seed),
                         "--adapt-steps", str(s.adapt_steps), "--adapt-lr", str(s.adapt_lr), "--out", str(out), "--quiet"] + self.common()
        return json.loads(out.read_text()) if self.run(f"eval-{row.key}", "lasium-eval", args, row.key, produces=out) else None

    def do_row(self, row: Row) -> None:
        record: dict[str, Any] = {"key": row.key, "label": row.label, "algo": row.algo, "source": row.source, "family": row.family,
                                  "optional": row.optional, "status": "running"}
        self.rows.append(record)
        remaining, estimate = self.remaining(), self.estimate(row)
        record["estimate_seconds"] = round(estimate, 1)
        if remaining is not None and estimate > remaining:
            record["status"] = "skipped"
            self.stages.append({"name": row.key, "row": row.key, "status": "skipped", "seconds": 0.0, "command": "",
                                "note": f"needs ~{estimate:.0f} s, {max(0.0, remaining):.0f} s left in the budget"})
            return
        t0 = time.time()
        run = None
        if row.source != "scratch":
            if row.source != "real" and not self.generator.get("ok", True):
                record["status"] = "failed (no generator)"
                return
            shards = self.shards(row)
            run = self.train(row, shards) if shards is not None else None
            if run is None:
                record["status"] = "failed"
                return
            record["train"] = train_summary(run)
        evaluation = self.evaluate(row, run)
        record["seconds"] = round(time.time() - t0, 1)
        if evaluation is None:
            record["status"] = "failed"
            return
        record["status"] = "ok"
        record["episode_digest"] = evaluation["episode_digest"]
        record["eval"] = {str(r["shots"]): {k: r[k] for k in ("accuracy", "ci95", "accuracy_pct", "ci95_pct", "tasks", "seconds")}
                          for r in evaluation["results"]}
        record["eval_device"] = evaluation["device"]

    # --- results ----------------------------------------------------------------------------------
    def results(self, protocol: dict[str, Any]) -> dict[str, Any]:
        from lasium.evaluate.published import OMNIGLOT_5WAY, TARGETS

        a = self.args
        skipped = [s for s in self.stages if s["status"] == "skipped"]
        if self.device_type != "cuda":
            label = "reduced configuration, CPU" + (" (--quick sizes)" if a.quick else f" (--sizes {a.sizes})")
        elif a.quick:
            label = f"reduced configuration (--quick sizes) on {self.device.get('name')}"
        else:
            label = f"GPU configuration on {self.device.get('name')}" + (f"; {len(skipped)} stage(s) skipped by the time budget" if skipped else "")
        # Rows scored on the same number of tasks must share the digest (a shorter run scores a prefix).
        by_count: dict[str, set[str]] = {}
        for r in self.rows:
            if r.get("episode_digest"):
                counts = sorted({str(e["tasks"]) for e in r["eval"].values()})
                by_count.setdefault(",".join(counts), set()).add(r["episode_digest"])
        digests = {d for ds in by_count.values() for d in ds}
        return {
            "format": "lasium-repro-omniglot", "format_version": 1, "label": label, "preset": a.sizes,
            "driver_command": shlex.join([sys.executable.rsplit("/", 1)[-1], "benchmarks/repro_omniglot.py"] + sys.argv[1:]),
            "device": self.device, "started": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(self.start)),
            "wall_seconds": round(time.time() - self.start, 1),
            "stage_seconds": round(sum(st.get("seconds") or 0.0 for st in self.stages), 1),
            "resumed": any("reused" in (st.get("note") or "") for st in self.stages), "budget_seconds": a.budget_seconds, "sizes": asdict(self.sizes),
            "threads": self.threads or os.environ.get("OMP_NUM_THREADS"),
            "generator": self.generator, "protocol": protocol, "stages": self.stages, "rows": self.rows,
            "episode_digests_equal": all(len(ds) == 1 for ds in by_count.values()),
            "episode_digests_by_tasks": {k: sorted(ds) for k, ds in by_count.items()},
            "episode_digest": next(iter(digests)) if len(digests) == 1 else None,
            "images": self.images(), "targets": {k: {str(s): v for s, v in t.items()} for k, t in TARGETS.items()},
            "published": [asdict(p) for p in OMNIGLOT_5WAY],
        }

    def images(self) -> dict[str, Any]:
        return {"curves": [n for n in ("curves-protonets.png", "curves-maml.png") if (self.results_dir / n).is_file()],
                "previews": dict(self.previews)}

    def draw_curves(self) -> None:
        from lasium.evaluate.plots import line_chart, validation_curves

        for algo, name in (("protonets", "curves-protonets.png"), ("maml", "curves-maml.png")):
            runs = {r["key"]: self.work / "runs" / r["key"] for r in self.rows if r.get("train") and
                    (r["algo"] == "protonets") == (algo == "protonets")}
            if runs:
                series = validation_curves(runs)
                line_chart(series, self.results_dir / name, title=f"{'ProtoNets' if algo == 'protonets' else 'MAML'}: validation "
                           "accuracy (Omniglot val, 5-way 1-shot)", xlabel="iteration", ylabel="accuracy")

    def write(self, protocol: dict[str, Any]) -> None:
        from lasium.evaluate.repro_report import render_markdown
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
            out.update(step=state.get("step"), tasks_seen=state.get("tasks_seen"))
        out.update(best_val_accuracy=state.get("best_val_accuracy"), best_step=state.get("best_step", out.get("best_step")))
    try:
        cfg = json.loads((run / "train_config.json").read_text())
        out.update(algo=cfg.get("algo"), meta_batch=cfg.get("meta_batch"), iterations=cfg.get("iterations"))
    except (OSError, ValueError):
        pass
    return out


def describe_device(option: str) -> tuple[str, dict[str, Any]]:
    import platform

    import torch

    use_cuda = option.startswith("cuda") or (option == "auto" and torch.cuda.is_available())
    if use_cuda:
        return "cuda", {"type": "cuda", "name": torch.cuda.get_device_name(0), "torch": torch.__version__, "cuda": torch.version.cuda}
    return "cpu", {"type": "cpu", "name": platform.processor() or platform.machine(), "cores": os.cpu_count(), "torch": torch.__version__}
