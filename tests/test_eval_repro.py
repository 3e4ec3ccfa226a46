"""The Omniglot reproduction page and driver: rendering, the budget guard, training-curve pictures, and (slow)
a --quick run of real stages on Omniglot. The full ``--quick --fit`` run (all rows, ~8 min on a 2-core CPU) is
run by hand: ``python benchmarks/repro_omniglot.py --quick --fit --work /tmp/rq --results /tmp/rq_results``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from plots import line_chart, nice_ticks, validation_curves
from published import OMNIGLOT_5WAY
from repro_helpers import driver_pipeline
from repro_omniglot import plan_rows
from repro_pipeline import Pipeline
from repro_report import render_markdown

DRIVER = "benchmarks/repro_omniglot.py"


def row(key, label, algo, family, one, five, digest="d" * 64):
    return {
        "key": key,
        "label": label,
        "algo": algo,
        "family": family,
        "status": "ok",
        "episode_digest": digest,
        "eval": {"1": {"accuracy_pct": one, "ci95_pct": 0.5}, "5": {"accuracy_pct": five, "ci95_pct": 0.3}},
        "train": {
            "algo": algo,
            "step": 100,
            "meta_batch": 32,
            "tasks_seen": 3200,
            "best_val_accuracy": 0.8,
            "best_step": 100,
        },
    }


def test_markdown_has_published_rows_ours_and_target_verdicts():
    results = {
        "label": "GPU configuration on NVIDIA H200",
        "device": {"type": "cuda", "name": "NVIDIA H200", "torch": "2.11"},
        "wall_seconds": 321.0,
        "budget_seconds": 360,
        "preset": "gpu",
        "protocol": {"ways": 5, "tasks": 1000, "queries": 15},
        "rows": [
            row("protonets-ro", "LASIUM-RO-GAN + ProtoNets (ours)", "protonets", "lasium", 81.0, 90.0),
            row("maml-ro", "LASIUM-RO-GAN + MAML (ours)", "maml", "lasium", 80.0, 96.0),
            {
                "key": "maml-oc",
                "label": "LASIUM-OC-GAN + MAML (ours)",
                "algo": "maml",
                "family": "lasium",
                "status": "skipped",
            },
        ],
        "stages": [
            {"name": "train-maml-ro", "status": "ok", "seconds": 80.2, "command": "lasium-train --algo maml"},
            {"name": "maml-oc", "status": "skipped", "seconds": 0.0, "command": "", "note": "needs ~90 s, 12 s left"},
        ],
        "images": {"curves": ["curves-maml.png"], "previews": {"ro": "preview-ro.png"}},
    }
    md = render_markdown(results)
    for p in OMNIGLOT_5WAY:
        assert f"| {p.label} | {p.one_shot:.2f} | {p.five_shot:.2f} | published |" in md
    assert "| training from scratch † |" in md and "| UMTRA |" in md
    assert "| **LASIUM-RO-GAN + ProtoNets (ours)** | 81.00 ± 0.50 | 90.00 ± 0.30 | this run |" in md
    assert "| **LASIUM-OC-GAN + MAML (ours)** | – | – | this run (skipped) |" in md
    assert "ProtoNets, 1-shot: target ≥ 80.15; ours 81.00" in md and "**met**" in md
    assert (
        "ProtoNets, 5-shot: target ≥ 91.10; ours 90.00 (LASIUM-RO-GAN + ProtoNets (ours)): **not met (-1.10 points)**"
        in md
    )
    assert "MAML, 5-shot: target ≥ 95.29; ours 96.00" in md
    # every LASIUM row against the paper's best cell of its learner: RO + ProtoNets misses at 5-shot, RO + MAML at
    # 1-shot; the skipped OC row is named as not scored
    assert "- LASIUM-RO-GAN + ProtoNets (ours): 81.00 / 90.00 vs 80.15 / 91.10 (+0.85 / -1.10): **not above**" in md
    assert "- LASIUM-RO-GAN + MAML (ours): 80.00 / 96.00 vs 83.26 / 95.29 (-3.26 / +0.71): **not above**" in md
    assert "**2 of the 2 scored LASIUM rows are not above it**" in md
    assert "not scored yet: LASIUM-OC-GAN + MAML (ours)" in md
    assert "same tasks" in md and "`lasium-train --algo maml`" in md and "needs ~90 s, 12 s left" in md
    assert "![curves-maml.png](curves-maml.png)" in md and "![ro](preview-ro.png)" in md
    results["rows"][1]["episode_digest"] = "e" * 64
    assert "different task sets" in render_markdown(results)
    assert "machines" not in md  # rows without a device record, or all on one machine: nothing to say
    for r, name in zip(results["rows"][:2], ("AMD EPYC", "Intel Xeon")):
        r["device"] = {"type": "cpu", "name": name, "native_bf16": name.startswith("Intel"), "torch": "2.13.0"}
    said = render_markdown(results)
    assert "Rows ran on 2 machines" in said and "AMD EPYC (cpu, no native bf16 (auto = fp32), torch 2.13.0)" in said


def test_budget_guard_skips_rows_and_still_writes_the_page(tmp_path, repo_root):
    results = tmp_path / "results"
    proc = subprocess.run(
        [
            sys.executable,
            DRIVER,
            "--budget-seconds",
            "1",
            "--work",
            str(tmp_path / "work"),
            "--results",
            str(results),
            "--device",
            "cpu",
        ],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads((results / "omniglot.json").read_text())
    assert data["label"].startswith("reduced configuration, CPU")
    assert data["rows"] and all(r["status"] == "skipped" for r in data["rows"])
    assert any(r["key"] == "maml-supervised" for r in data["rows"])  # optional rows are planned without --quick
    md = (results / "omniglot.md").read_text()
    assert "reduced configuration, CPU" in md and "skipped" in md and "s left in the budget" in md
    assert "| LASIUM best with ProtoNets | 80.15 | 91.10 | published |" in md
    # a second run into the same work folder needs --overwrite
    again = subprocess.run(
        [sys.executable, DRIVER, "--budget-seconds", "1", "--work", str(tmp_path / "work"), "--results", str(results)],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode != 0 and "--overwrite" in again.stderr
    both = subprocess.run(
        [sys.executable, DRIVER, "--resume", "--overwrite", "--work", str(tmp_path / "work")],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert both.returncode != 0 and "contradict" in both.stderr
    nothing = subprocess.run(
        [
            sys.executable,
            DRIVER,
            "--resume",
            "--work",
            str(tmp_path / "elsewhere"),
            "--results",
            str(tmp_path / "no-results"),
        ],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert nothing.returncode != 0 and "no previous run" in nothing.stderr


def test_resume_reuses_only_identical_successful_stages(tmp_path):
    def pipeline(resume: bool) -> Pipeline:
        return driver_pipeline(tmp_path, resume=resume, rates={})

    out = tmp_path / "made.png"
    first = pipeline(resume=False)
    assert first.run("probe", "lasium-shards", ["--help"], produces=out)
    assert first.stages[-1]["status"] == "ok" and (tmp_path / "work" / "logs" / "probe.done.json").is_file()
    out.write_bytes(b"x")
    second = pipeline(resume=True)
    assert second.run("probe", "lasium-shards", ["--help"], produces=out)
    assert "reused" in second.stages[-1]["note"] and second.stages[-1]["seconds"] == first.stages[-1]["seconds"]
    assert second.run("probe", "lasium-shards", ["inspect", "--help"], produces=out)  # another command: run again
    assert "note" not in second.stages[-1] and second.stages[-1]["status"] == "ok"
    out.unlink()
    third = pipeline(resume=True)
    assert third.run("probe", "lasium-shards", ["inspect", "--help"], produces=out)  # its output is gone: run again
    assert "note" not in third.stages[-1]
    assert not third.run("probe", "lasium-shards", ["no-such-command"])
    fourth = pipeline(resume=True)
    fourth.run("probe", "lasium-shards", ["no-such-command"])
    assert fourth.stages[-1]["status"] == "failed"  # a failure is never reused


def test_resume_across_sessions_takes_unchanged_rows_from_the_committed_page(tmp_path):
    """A later session has no work folder, only results/omniglot.json: rows whose commands match are not run again."""

    def pipeline() -> Pipeline:
        return driver_pipeline(tmp_path, resume=True, rates={"startup": 1.0})

    rows = {r.key: r for r in plan_rows("maml")}
    done = row("protonets-ro", "LASIUM-RO-GAN + ProtoNets (ours)", "protonets", "lasium", 91.0, 97.9)
    done["commands"] = pipeline().planned_commands(rows["protonets-ro"])
    changed = dict(
        row("maml-ro", "LASIUM-RO-GAN + MAML (ours)", "maml", "lasium", 80.0, 95.0),
        commands={"eval": "lasium-eval --old"},
    )
    stage = {
        "name": "train-protonets-ro",
        "row": "protonets-ro",
        "status": "ok",
        "seconds": 812.5,
        "command": done["commands"]["train"],
    }
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "omniglot.json").write_text(
        json.dumps({"preset": "quick", "rows": [done, changed], "stages": [stage]})
    )
    p = pipeline()
    p.do_row(rows["protonets-ro"])
    assert p.rows[-1]["reused"] and p.rows[-1]["eval"]["1"]["accuracy_pct"] == 91.0
    assert p.stages[-1]["seconds"] == 812.5 and "reused" in p.stages[-1]["note"]
    assert not (tmp_path / "work" / "logs").exists()  # nothing ran
    record = {"commands": p.planned_commands(rows["maml-ro"])}
    assert not p.reuse_committed(rows["maml-ro"], record)  # its commands changed: it must run again
    assert "--augment" in done["commands"]["train"] and "--precision" in done["commands"]["eval"]


def test_resume_takes_rows_from_a_parallel_drivers_page(tmp_path):
    """Two drivers on the two cores (--only, one --work, own --results): --reuse-results merges the other's rows."""

    def pipeline(reuse: list[str]) -> Pipeline:
        return driver_pipeline(tmp_path, resume=True, rates={"startup": 1.0}, reuse=reuse)

    rows = {r.key: r for r in plan_rows("maml")}
    other = tmp_path / "other" / "omniglot.json"
    other.parent.mkdir()
    done = row("maml-ro", "LASIUM-RO-GAN + MAML (ours)", "maml", "lasium", 88.0, 96.0)
    done["commands"] = pipeline([]).planned_commands(rows["maml-ro"])
    failed = dict(row("protonets-n", "x", "protonets", "lasium", 1.0, 2.0), status="failed")
    other.write_text(json.dumps({"preset": "quick", "rows": [done, failed], "stages": []}))
    record = {"commands": done["commands"]}
    assert not pipeline([]).reuse_committed(rows["maml-ro"], dict(record))  # not without the page
    p = pipeline([str(other)])
    assert p.reuse_committed(rows["maml-ro"], record) and record["eval"]["1"]["accuracy_pct"] == 88.0
    assert "protonets-n" not in p.committed_rows  # a failed row is never taken


def test_curves_from_metrics_and_png(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    records = [
        {"step": 10, "split": "train", "accuracy": 0.3},
        {"step": 10, "split": "val", "accuracy": 0.4},
        {"step": 20, "split": "val", "accuracy": 0.55},
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + '{"step": 30, "spl')
    series = validation_curves({"a": run, "missing": tmp_path / "nothing"})
    assert series == {"a": [(10.0, 0.4), (20.0, 0.55)], "missing": []}
    path = line_chart(series, tmp_path / "c.png", title="t", xlabel="iteration", ylabel="accuracy")
    img = Image.open(path)
    assert img.size == (720, 440) and len(img.getcolors(1 << 16)) > 3
    assert nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0] and nice_ticks(0, 1875, 6)[:3] == [0, 500, 1000]


@pytest.mark.slow
def test_quick_driver_runs_real_stages(tmp_path, repo_root, omniglot_root):
    """Real lasium-gen --source real, lasium-train, lasium-eval and the scratch baseline, at --quick sizes."""
    results = tmp_path / "results"
    proc = subprocess.run(
        [
            sys.executable,
            DRIVER,
            "--quick",
            "--only",
            "protonets-supervised,scratch-protonets",
            "--work",
            str(tmp_path / "work"),
            "--results",
            str(results),
            "--data-root",
            str(omniglot_root),
            "--device",
            "cpu",
        ],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    data = json.loads((results / "omniglot.json").read_text())
    assert [r["status"] for r in data["rows"]] == ["ok", "ok"], data["stages"]
    assert data["episode_digests_equal"] and data["episode_digest"]
    assert all(set(r["eval"]) == {"1", "5"} for r in data["rows"])
    assert {s["name"] for s in data["stages"]} >= {
        "gen-real",
        "train-protonets-supervised",
        "eval-protonets-supervised",
        "eval-scratch-protonets",
    }
    assert (results / "curves-protonets.png").is_file() and "supervised ProtoNets (ours" in (
        results / "omniglot.md"
    ).read_text()


def test_ablation_table_adds_one_ingredient_per_line_and_ends_with_the_main_row():
    base = dict(tasks=2000, iterations=1000, meta_batch=8, augment="none", param=1.0, precision="fp32")
    steps = [
        row("ablation-0-earlier", "a0", "protonets", "ablation", 71.0, 88.0),
        row("ablation-1-shift5", "a1", "protonets", "ablation", 89.5, 97.0),
    ]
    steps[0].update(note="the earlier CPU configuration", settings=base)
    steps[1].update(note="+ query shift (shift5)", settings=dict(base, augment="shift5"))
    main = row("protonets-n", "LASIUM-N-GAN + ProtoNets (ours)", "protonets", "lasium", 93.1, 98.6)
    main.update(settings=dict(tasks=32000, iterations=8000, meta_batch=4, augment="auto", param=None, precision=None))
    main["train"].update(augment="shift5", precision="bf16")
    md = render_markdown({"rows": steps + [main], "protocol": {"tasks": 1000}})
    table = md.split("## Ablation")[1].split("##")[0]
    lines = [ln for ln in table.splitlines() if ln.startswith("| ") and not ln.startswith("| step")]
    assert len(lines) == 3
    assert "the earlier CPU configuration" in lines[0] and "71.00 ± 0.50" in lines[0]
    assert "+ query shift (shift5)" in lines[1] and "+18.50" in lines[1]
    assert (
        "+ bf16" in lines[2]
        and "| shift5 | preset | bf16 |" in lines[2]
        and "93.10 ± 0.50" in lines[2]
        and "+3.60" in lines[2]
    )
    # ablation rows are not repeated in the main accuracy table
    assert "| **a0** |" not in md and "| **LASIUM-N-GAN + ProtoNets (ours)** |" in md


def test_without_native_bf16_the_main_row_is_also_the_best_augmentation_step():
    # auto = fp32 there, so an ablation row "+ best augmentation" would be the main row trained a second time
    from repro_omniglot import PRESETS, plan_ablation

    with_bf16 = [r.key for r in plan_ablation(PRESETS["cpu"], native_bf16=True)]
    without = [r.key for r in plan_ablation(PRESETS["cpu"], native_bf16=False)]
    assert with_bf16[-1] == "ablation-5-augment" and without == with_bf16[:-1]
    step = row("ablation-4-sigma", "a4", "protonets", "ablation", 90.0, 97.5)
    step.update(note="+ tuned σ", settings=dict(tasks=32000, iterations=8000, meta_batch=4, augment="shift5"))
    step["train"].update(augment="shift5", precision="fp32")
    main = row("protonets-n", "LASIUM-N-GAN + ProtoNets (ours)", "protonets", "lasium", 91.0, 98.0)
    main.update(settings=dict(tasks=32000, iterations=8000, meta_batch=4, augment="auto", param=None, precision=None))
    main["train"].update(augment="shift5-affine", precision="fp32")
    main["device"] = {"type": "cpu", "native_bf16": False}
    md = render_markdown({"rows": [step, main], "protocol": {"tasks": 1000}})
    table = md.split("## Ablation")[1].split("##")[0]
    last = [ln for ln in table.splitlines() if ln.startswith("| ") and not ln.startswith("| step")][-1]
    assert "+ best augmentation (shift5-affine), + --precision auto, fp32 on its CPU (no native bf16)" in last
    assert "| shift5-affine | preset | fp32 |" in last and "+1.00" in last


def test_other_task_sources_are_planned_after_the_main_rows_at_the_lasium_budgets(tmp_path):
    from repro_omniglot import PRESETS, plan_rows, select_rows

    from lasium.train.augment import DEFAULT_FOR_GENERATED

    rows = plan_rows("maml")
    keys = [r.key for r in rows]
    other = ["maml-umtra", "protonets-umtra", "maml-cactus", "protonets-cactus", "protonets-mix-n-umtra"]
    assert keys[-len(other) :] == other and keys.index("maml-supervised") < keys.index("maml-umtra")
    by_key = {r.key: r for r in rows}
    assert all(by_key[k].optional and by_key[k].family == "other" for k in other)
    assert [r.key for r in select_rows(rows, "other")] == other
    assert [r.key for r in select_rows(rows, "protonets-cactus,protonets-n")] == ["protonets-n", "protonets-cactus"]

    sizes = PRESETS["cpu"]
    p = driver_pipeline(tmp_path, preset="cpu")
    shards = tmp_path / "work" / "shards"
    plans = {k: p.planned_commands(by_key[k]) for k in keys}
    for source in ("umtra", "cactus"):
        for learner, tasks, lasium in (
            ("maml", sizes.gen_tasks_maml, "maml-ro"),
            ("protonets", sizes.gen_tasks_protonets, "protonets-ro"),
        ):
            plan = plans[f"{learner}-{source}"]
            gen = plan["gen"].split()
            assert gen[:3] == ["lasium-gen", "--source", source] and "--strategy" not in gen
            assert gen[gen.index("--n-tasks") + 1] == str(tasks)  # the LASIUM row's count for this learner
            assert gen[gen.index("--out") + 1] == str(shards / f"{source}-{learner}")
            assert not {"--generator", "--embedding", "--clusters", "--umtra-shift"} & set(gen)  # the source's defaults
            # trained and scored exactly like the LASIUM row of the same learner: only shards and names differ
            assert plan["train"].replace(f"{source}-{learner}", "X").replace(f"{learner}-{source}", "Y") == plans[
                lasium
            ]["train"].replace(f"ro-{learner}", "X").replace(lasium, "Y")
            assert plan["eval"].replace(f"{learner}-{source}", "Y") == plans[lasium]["eval"].replace(lasium, "Y")
            assert p.augment_planned(by_key[f"{learner}-{source}"]) == "none"  # auto: UMTRA/CACTUs shards get none
    assert p.augment_planned(by_key["protonets-n"]) == DEFAULT_FOR_GENERATED

    mix = by_key["protonets-mix-n-umtra"]
    plan = plans["protonets-mix-n-umtra"]
    # no set of its own: the generation commands are those of the LASIUM-N and UMTRA ProtoNets rows
    assert plan["gen-n-protonets"] == plans["protonets-n"]["gen"]
    assert plan["gen-umtra-protonets"] == plans["protonets-umtra"]["gen"]
    train = plan["train"].split()
    assert train[1:5] == [
        "--shards",
        f"{shards / 'n-protonets'}:0.5",
        "--shards",
        f"{shards / 'umtra-protonets'}:0.5",
    ]
    same = " ".join(train[5:]).replace("mix-n-umtra", "n").replace("--augment shift5-affine", "--augment auto")
    assert same == " ".join(plans["protonets-n"]["train"].split()[3:])
    assert p.augment_planned(mix) == "shift5-affine"  # auto would turn it off for the whole mixture
    assert [(m["source"], m["weight"], m["shards"]) for m in p.settings(mix)["mixture"]] == [
        ("n", 0.5, "n-protonets"),
        ("umtra", 0.5, "umtra-protonets"),
    ]


def test_rows_of_other_sources_run_their_stages_and_the_mixture_generates_nothing_twice(
    tmp_path, repo_root, monkeypatch
):
    """do_row with a stand-in for the stage runner: which commands run, in which order, and the record kept."""
    by_key = {r.key: r for r in plan_rows("maml")}
    p = driver_pipeline(tmp_path)
    ran = []

    def fake_run(name, console, args, row=None, produces=None, continue_with=None):
        ran.append((name, console, row))
        if console == "lasium-gen":
            out = Path(args[args.index("--out") + 1])
            out.mkdir(parents=True)
            source = args[args.index("--source") + 1] if "--source" in args else "generator"
            (out / "manifest.json").write_text(json.dumps({"config": {"source": source}, "source": {"kind": source}}))
        if console == "lasium-eval":
            Path(produces).parent.mkdir(parents=True, exist_ok=True)
            result = {"accuracy": 0.5, "ci95": 0.01, "accuracy_pct": 50.0, "ci95_pct": 1.0, "tasks": 10, "seconds": 1}
            Path(produces).write_text(
                json.dumps(
                    {
                        "episode_digest": "d" * 64,
                        "device": {},
                        "results": [dict(result, shots=1), dict(result, shots=5)],
                    }
                )
            )
        return True

    monkeypatch.setattr(p, "run", fake_run)
    for key in ("protonets-umtra", "protonets-mix-n-umtra", "maml-cactus"):
        p.do_row(by_key[key])
    assert [n for n, _, _ in ran] == [
        "gen-umtra-protonets",
        "preview-umtra",
        "train-protonets-umtra",
        "eval-protonets-umtra",
        "gen-n-protonets",  # the mixture's LASIUM-N set (no protonets-n row ran here); the UMTRA set is reused
        "preview-n",
        "train-protonets-mix-n-umtra",
        "eval-protonets-mix-n-umtra",
        "gen-cactus-maml",
        "preview-cactus",
        "train-maml-cactus",
        "eval-maml-cactus",
    ]
    assert {n: r for n, _, r in ran}["gen-n-protonets"] == "protonets-mix-n-umtra"
    assert p.previews == {"umtra": "preview-umtra.png", "n": "preview-n.png", "cactus": "preview-cactus.png"}
    records = {r["key"]: r for r in p.rows}
    assert all(r["status"] == "ok" for r in records.values())
    assert {k: r["augment"] for k, r in records.items() if r["augment"] != "none"} == {
        "protonets-mix-n-umtra": "shift5-affine"
    }
    assert records["protonets-umtra"]["task_source"] == {"kind": "umtra"}
    assert records["maml-cactus"]["task_source"] == {"kind": "cactus"}
    assert set(records["protonets-mix-n-umtra"]["commands"]) == {
        "gen-n-protonets",
        "gen-umtra-protonets",
        "train",
        "eval",
    }
    # the estimate counts only what is still to generate
    fresh = driver_pipeline(tmp_path / "fresh")
    assert fresh.estimate(by_key["protonets-mix-n-umtra"]) > p.estimate(by_key["protonets-mix-n-umtra"])


def test_page_shows_other_task_sources_beside_their_published_figures():
    umtra = row("maml-umtra", "UMTRA + MAML (ours)", "maml", "other", 77.0, 92.0)
    cactus = row("protonets-cactus", "CACTUs-VAE + ProtoNets (ours)", "protonets", "other", 70.0, 85.0)
    mix = row(
        "protonets-mix-n-umtra",
        "LASIUM-N-GAN + UMTRA mixture (0.5 / 0.5) + ProtoNets (ours)",
        "protonets",
        "other",
        90.0,
        97.0,
    )
    umtra.update(source="umtra", settings={"tasks": 4000, "augment": "auto"}, augment="none")
    umtra["train"]["augment"] = "none"
    cactus.update(
        source="cactus",
        settings={"tasks": 32000, "augment": "auto"},
        augment="none",
        task_source={
            "kind": "cactus",
            "embedding": {"kind": "vae-posterior-mean", "dim": 20, "generator": "omniglot-vae"},
            "clustering": {"clusters": 500, "partitions": 100, "scaling": True},
        },
    )
    mix.update(
        source="mix",
        note="augment auto resolves to none",
        settings={
            "tasks": 32000,
            "augment": "auto",
            "mixture": [
                {"source": "n", "weight": 0.5, "shards": "n-protonets"},
                {"source": "umtra", "weight": 0.5, "shards": "umtra-protonets"},
            ],
        },
        augment="none",
    )
    maml_ro = row("maml-ro", "LASIUM-RO-GAN + MAML (ours)", "maml", "lasium", 80.0, 95.0)
    md = render_markdown({"rows": [maml_ro, umtra, cactus, mix], "protocol": {"tasks": 1000}})
    section = md.split("## Other task sources")[1].split("\n## ")[0]
    assert (
        "| **UMTRA + MAML (ours)** | 77.00 ± 0.50 | 92.00 ± 0.30 | 83.80 | 95.43 | "
        "UMTRA (Khodadadeh et al., NeurIPS 2019" in section
    )
    assert (
        "| **CACTUs-VAE + ProtoNets (ours)** | 70.00 ± 0.50 | 85.00 ± 0.30 | 68.12 | 83.58 | CACTUs-ProtoNets (ACAI)"
        in section
    )
    assert "| 4,000 | none | ok |" in section and "| 32,000 per set | none | ok |" in section
    assert "no published figure" in section and "not the published CACTUs-ACAI" in section
    assert "vae-posterior-mean of `omniglot-vae`, 20-d; k = 500, P = 100" in section
    assert "`n-protonets` × 0.5 + `umtra-protonets` × 0.5" in section and "augment auto resolves to none" in section
    # the main table keeps the published rows and the LASIUM rows; ours of other sources are only in their section
    main = md.split("## Omniglot")[1].split("## Targets")[0]
    assert (
        "| CACTUs-MAML (ACAI) | 68.84 | 87.78 | published |" in main and "| UMTRA | 83.80 | 95.43 | published |" in main
    )
    assert "LASIUM-RO-GAN + MAML (ours)" in main and "UMTRA + MAML (ours)" not in main
    assert "## Other task sources" not in render_markdown({"rows": [maml_ro], "protocol": {"tasks": 1000}})


def test_only_selects_other_task_sources_by_key_or_family(tmp_path, repo_root):
    """--only names the new rows (also at --quick sizes, where optional rows are otherwise left out)."""

    def driver(*extra):
        results = tmp_path / f"results{len(list(tmp_path.iterdir()))}"
        proc = subprocess.run(
            [sys.executable, DRIVER, "--quick", "--budget-seconds", "1", "--device", "cpu", "--results", str(results)]
            + ["--work", str(results / "work"), *extra],
            cwd=repo_root,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        return [r["key"] for r in json.loads((results / "omniglot.json").read_text())["rows"]]

    assert driver("--only", "protonets-mix-n-umtra,maml-umtra") == ["maml-umtra", "protonets-mix-n-umtra"]
    assert driver("--only", "other") == [
        "maml-umtra",
        "protonets-umtra",
        "maml-cactus",
        "protonets-cactus",
        "protonets-mix-n-umtra",
    ]
    assert driver("--only", "other", "--no-optional") == []
    bad = subprocess.run(
        [sys.executable, DRIVER, "--only", "maml-nothing", "--results", str(tmp_path / "x")],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0 and "protonets-cactus" in bad.stderr and "other" in bad.stderr


def test_plan_lists_rows_with_estimates_and_runs_nothing(tmp_path, repo_root):
    """--plan: each row (here two, by --only) to run with its estimate; no work folder, no page."""
    work, results = tmp_path / "work", tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, str(repo_root / "benchmarks" / "repro_omniglot.py"), "--sizes", "cpu", "--plan"]
        + ["--ablation", "--only", "maml-ro,ablation-0-earlier", "--work", str(work), "--results", str(results)],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split()[0] for line in lines[1:3]] == ["maml-ro", "ablation-0-earlier"]
    assert all(" to run: ~" in line for line in lines[1:3]) and "h of stages left" in lines[-1]
    assert not work.exists() and not results.exists()


def test_page_only_takes_finished_rows_and_marks_the_rest_not_run(tmp_path, repo_root, monkeypatch):
    """--page-only: a parallel driver's finished row lands on the page; the others say 'not run' with an estimate."""
    work, results, other = tmp_path / "work", tmp_path / "results", tmp_path / "b" / "omniglot.json"
    p = driver_pipeline(tmp_path, preset="cpu", resume=True, rates={"startup": 1.0}, device="auto", threads=None)
    maml_ro = next(r for r in plan_rows("maml") if r.key == "maml-ro")
    done = dict(row("maml-ro", maml_ro.label, "maml", "lasium", 90.5, 97.6), commands=p.planned_commands(maml_ro))
    for scored in done["eval"].values():
        scored["tasks"] = 1000
    other.parent.mkdir()
    other.write_text(json.dumps({"preset": "cpu", "rows": [done], "stages": []}))
    proc = subprocess.run(
        [sys.executable, str(repo_root / DRIVER), "--sizes", "cpu", "--page-only", "--only", "maml-ro,protonets-n"]
        + ["--work", str(work), "--results", str(results), "--reuse-results", str(other)],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    page = json.loads((results / "omniglot.json").read_text())
    assert {r["key"]: r["status"] for r in page["rows"]} == {"maml-ro": "ok", "protonets-n": "not run"}
    md = (results / "omniglot.md").read_text()
    assert "| **LASIUM-RO-GAN + MAML (ours)** | 90.50 ± 0.50 | 97.60 ± 0.30 |" in md
    assert "Project targets at the reference budgets or larger" in md and "target ≥ 90.00; ours 90.50" in md
    assert "not run yet: --resume --only protonets-n (~" in md and not work.exists()


def test_longer_maml_rows_train_longer_on_more_distinct_tasks(tmp_path, repo_root):
    """maml-{n,ro}-x4: LONGER_MAML times the preset's iterations and generated tasks (each still seen once), in the
    main table and the targets (family lasium), optional, and taken by --only."""
    from repro_omniglot import PRESETS, plan_longer_maml

    cpu = PRESETS["cpu"]
    rows = {r.key: r for r in plan_longer_maml(cpu)}
    assert set(rows) == {"maml-n-x4", "maml-ro-x4"}
    assert all(r.family == "lasium" and r.optional and "4× budget" in r.label for r in rows.values())
    p = driver_pipeline(tmp_path, preset="cpu", resume=True, rates={"startup": 1.0}, device="auto", threads=None)
    longer = p.planned_commands(rows["maml-n-x4"])
    main = p.planned_commands(next(r for r in plan_rows("maml") if r.key == "maml-n"))
    assert f"--iterations {4 * cpu.maml_iterations} " in longer["train"]
    assert f"--iterations {cpu.maml_iterations} " in main["train"]
    assert f"--n-tasks {4 * cpu.gen_tasks_maml} " in longer["gen"]
    assert f"--n-tasks {cpu.gen_tasks_maml} " in main["gen"]
    assert f"shards/n-maml-{4 * cpu.gen_tasks_maml} " in longer["gen"] and "shards/n-maml " in main["gen"]  # own set
    proc = subprocess.run(
        [sys.executable, str(repo_root / DRIVER), "--sizes", "cpu", "--plan", "--only", "maml-n-x4"]
        + ["--work", str(tmp_path / "w"), "--results", str(tmp_path / "r")],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1].split()[0] == "maml-n-x4"
