"""``lasium-repro sweep`` (:mod:`lasium.repro.sweep`): the points and stage commands of a sweep, for ProtoNets (the
committed sweep) and MAML (its own preset's shards, its own reference values), what a resumed sweep reuses, and the
committed pages regenerated from their JSON. Fast: no real stage runs."""

from __future__ import annotations

import json
import re
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from lasium.repro import stages
from lasium.repro.cli import main as repro_main
from lasium.repro.pages import redraw_page
from lasium.repro.stages import same_commands
from lasium.repro.sweep import Point, PointBudget, SweepOptions, commands, plan, run
from lasium.repro.sweep_mixture import mixture_commands
from lasium.repro.sweep_page import best_of, reference_value, render

REPO = Path(__file__).resolve().parent.parent


def test_plan_takes_the_given_values_for_every_strategy():
    default = [p for p in plan(1.0, ["oc"]) if p.family == "parameter"]
    assert [p.value for p in default] == [0.2, 0.5, 0.8]
    given = [p for p in plan(1.0, ["ro", "oc"], [0.2, 0.6]) if p.family == "parameter"]
    assert [(p.strategy, p.value) for p in given] == [("ro", 0.2), ("ro", 0.6), ("oc", 0.2), ("oc", 0.6)]
    keys = [p.key for p in plan(1.0, ["n"])]
    assert len(keys) == len(set(keys)) and keys.count("n-sigma1-shift5") == 1  # shared by both families, run once
    # one family only: σ = --augment-sigma stays a point of it (it was merged into the augment family, then dropped)
    only = plan(1.0, ["n"], [0.25, 0.5, 1.0], only="parameter")
    assert [(p.family, p.value) for p in only] == [("parameter", 0.25), ("parameter", 0.5), ("parameter", 1.0)]
    assert [p.augment for p in plan(1.0, ["n"], [1.0], only="augment")] == [p.augment for p in plan(1.0, [])]


def test_augments_choose_the_augmentation_points(tmp_path: Path):
    """--augments: a point per named preset, on one n set; unknown presets are a one-line error (exit 2)."""
    chosen = plan(0.5, ["n"], [0.5], only="augment", augments=("shift5", "shift5-support"))
    assert [(p.augment, p.shard_name) for p in chosen] == [("shift5", "n-sigma0.5"), ("shift5-support", "n-sigma0.5")]
    options = SweepOptions(augments=("shift5", "shift5-support"), only="augment")
    assert "--augments shift5,shift5-support" in options.command_line()
    result = CliRunner().invoke(repro_main, ["sweep", "--augments", "shift5,shift9", "--work", str(tmp_path / "w")])
    assert result.exit_code == 2 and "--augments names unknown presets ['shift9']" in result.output
    assert not (tmp_path / "w").exists()


def test_training_queries_change_the_generated_tasks_only(tmp_path: Path):
    point = Point("parameter", "n", "sigma", 0.5, "shift5")
    five, fifteen = commands(point, PointBudget(), tmp_path), commands(point, PointBudget(queries=15), tmp_path)
    assert five["gen"][five["gen"].index("--queries") + 1] == "5"
    assert fifteen["gen"][fifteen["gen"].index("--queries") + 1] == "15"
    assert five["train"] == fifteen["train"] and five["eval"] == fifteen["eval"]
    result = CliRunner().invoke(repro_main, ["sweep", "--queries", "0", "--work", str(tmp_path / "w")])
    assert result.exit_code == 2 and "--queries must be at least 1" in result.output


def test_maml_points_train_maml_on_the_maml_preset(tmp_path: Path):
    point = Point("parameter", "oc", "alpha", 0.6, "shift5")
    maml = commands(point, PointBudget(algo="maml"), tmp_path)
    assert maml["train"][maml["train"].index("--algo") + 1] == "maml"
    assert maml["gen"][maml["gen"].index("--tuned-for") + 1] == "maml"
    assert maml["gen"][maml["gen"].index("--alpha") + 1] == "0.6"
    proto = commands(point, PointBudget(), tmp_path)
    assert proto["train"][proto["train"].index("--algo") + 1] == "protonets"
    assert proto["gen"][proto["gen"].index("--tuned-for") + 1] == "protonets"


def test_training_ways_change_the_generated_tasks_only(tmp_path: Path):
    point = Point("parameter", "n", "sigma", 0.5, "shift5")
    five, twenty = commands(point, PointBudget(), tmp_path), commands(point, PointBudget(ways=20), tmp_path)
    assert "--ways" not in five["gen"]  # 5-way commands stay as the committed sweeps ran them
    assert twenty["gen"][twenty["gen"].index("--ways") + 1] == "20"
    assert twenty["train"] == five["train"] and twenty["eval"] == five["eval"]  # validation stays 5-way
    from lasium.errors import ConfigError

    wide = commands(point, PointBudget(ways=20, epsilon=204.2), tmp_path)["gen"]
    assert wide[wide.index("--epsilon") + 1] == "204.2" and "--epsilon" not in twenty["gen"]
    with pytest.raises(ConfigError, match="--ways must be at least 2"):
        PointBudget(ways=1).validate()
    sizes = dict(tasks=4000, iterations=1000, meta_batch=4, val_tasks=1000, seed=0, ways=20, epsilon=204.2)
    page = {"command": "c", "device": "d", "wall_seconds": 60, "rows": [], "planned": 1, "sizes": sizes}
    md = render(page)
    assert "`lasium-gen` 4,000 20-way tasks" in md and "Training tasks are 20-way; validation stays 5-way." in md
    assert "Anchors at least ε 204.2 apart" in md
    independent = render(dict(page, sizes=dict(sizes, epsilon=0.0)))  # the ε lever's ε 0 says so, too
    assert "Anchors drawn independently (`lasium-gen --epsilon 0`" in independent and "ε 0 apart" not in independent
    assert "Anchors" not in render(dict(page, sizes={k: v for k, v in sizes.items() if k != "epsilon"}))


def test_training_shots_change_the_generated_tasks_only(tmp_path: Path):
    from lasium.errors import ConfigError

    point = Point("parameter", "n", "sigma", 0.5, "shift5")
    one, five = commands(point, PointBudget(), tmp_path), commands(point, PointBudget(shots=5), tmp_path)
    assert one["gen"][one["gen"].index("--shots") + 1] == "1"  # 1-shot commands stay as the committed sweeps ran them
    assert five["gen"][five["gen"].index("--shots") + 1] == "5"
    at = five["gen"].index("--shots") + 1
    assert five["gen"][:at] + five["gen"][at + 1 :] == one["gen"][:at] + one["gen"][at + 1 :]
    assert five["train"] == one["train"] and five["eval"] == one["eval"]  # validation still scores 1 and 5 shots
    with pytest.raises(ConfigError, match="--shots must be at least 1"):
        PointBudget(shots=0).validate()
    sizes = dict(tasks=4000, iterations=1000, meta_batch=4, val_tasks=1000, seed=0, ways=20, shots=5)
    page = {"command": "c", "device": "d", "wall_seconds": 60, "rows": [], "planned": 1, "sizes": sizes}
    md = render(page)
    assert "`lasium-gen` 4,000 5-shot 20-way tasks" in md and "Training tasks are 5-shot" in md


def test_a_learning_rate_schedule_changes_the_training_command_only(tmp_path: Path):
    from lasium.errors import ConfigError

    point = Point("parameter", "n", "sigma", 0.5, "shift5")
    constant = commands(point, PointBudget(), tmp_path)
    cosine = commands(point, PointBudget(lr_schedule="cosine"), tmp_path)
    assert "--lr-schedule" not in constant["train"]  # constant-rate commands stay as the committed sweeps ran them
    assert cosine["train"][cosine["train"].index("--lr-schedule") + 1] == "cosine"
    assert cosine["gen"] == constant["gen"] and cosine["eval"] == constant["eval"]
    with pytest.raises(ConfigError, match="--lr-schedule must be one of constant, cosine"):
        PointBudget(lr_schedule="step").validate()
    sizes = dict(tasks=4000, iterations=1000, meta_batch=4, val_tasks=1000, seed=0, lr_schedule="cosine")
    page = {"command": "c", "device": "d", "wall_seconds": 60, "rows": [], "planned": 1, "sizes": sizes}
    assert "Learning rate: `--lr-schedule cosine`." in render(page)


def test_a_protonets_distance_changes_the_training_command_only(tmp_path: Path):
    from lasium.errors import ConfigError

    point = Point("parameter", "n", "sigma", 0.5, "shift5")
    summed = commands(point, PointBudget(), tmp_path)
    mean = commands(point, PointBudget(distance="mean-squared"), tmp_path)
    assert "--distance" not in summed["train"]  # commands stay as the committed sweeps ran them
    assert mean["train"][mean["train"].index("--distance") + 1] == "mean-squared"
    assert mean["gen"] == summed["gen"] and mean["eval"] == summed["eval"]
    with pytest.raises(ConfigError, match="--distance must be one of squared-euclidean, mean-squared"):
        PointBudget(distance="cosine").validate()
    with pytest.raises(ConfigError, match="--distance is a ProtoNets option"):
        PointBudget(algo="maml", distance="mean-squared").validate()
    sizes = dict(tasks=4000, iterations=1000, meta_batch=4, val_tasks=1000, seed=0, distance="mean-squared")
    page = {"command": "c", "device": "d", "wall_seconds": 60, "rows": [], "planned": 1, "sizes": sizes}
    assert "Distance to the prototypes: `--distance mean-squared`." in render(page)


def test_the_committed_sweeps_are_planned_with_the_commands_they_ran():
    """results/sweep*.json were made by the old script: today's commands for their points equal the recorded ones
    (what a resumed sweep compares), given the options their pages recorded (the committed ProtoNets sweep was made
    over several sessions, some points with --gen-precision fp32)."""
    for page, budget in (
        ("sweep.json", PointBudget()),
        ("sweep-n/sweep.json", PointBudget()),
        ("sweep-maml/sweep.json", PointBudget(algo="maml", val_tasks=300)),
    ):
        data = json.loads((REPO / "results" / page).read_text())
        work = Path(re.search(r"--work (\S+)", data["command"]).group(1))
        for row in data["rows"]:
            point = Point(row["family"], row["strategy"], row["parameter"], row["value"], row["augment"])
            planned = [
                {k: " ".join(v) for k, v in commands(point, replace(budget, gen_precision=p), work).items()}
                for p in ("bf16", "fp32", "auto")
            ]
            # equal up to options renamed since (lasium-gen --preset is now --tuned-for), as a resumed sweep compares
            assert any(same_commands(row["commands"], p) for p in planned), (page, row["key"])


def test_a_resumed_sweep_takes_finished_points_from_its_page(tmp_path, monkeypatch):
    """Points whose recorded commands equal today's are reused from sweep.json; the others run."""
    ran = []

    def fake_run(self, name, console, args, row=None, produces=None, continue_with=None):
        ran.append(name)
        self.stages.append({"name": name, "row": row, "command": console, "status": "ok", "seconds": 10.0})
        if console == "lasium-eval":
            out = Path(args[args.index("--out") + 1])
            out.parent.mkdir(parents=True, exist_ok=True)
            cells = [dict(shots=s, accuracy_pct=80.0 + s, ci95_pct=0.5, tasks=10) for s in (1, 5)]
            out.write_text(json.dumps({"results": cells, "episode_digest": "d" * 64}))
        return True

    monkeypatch.setattr(stages.StageRunner, "run", fake_run)
    budget = PointBudget(tasks=24, iterations=4, val_tasks=10)
    options = SweepOptions(budget=budget, strategies=("oc",), values=(0.2, 0.6), only="parameter",
                           work=tmp_path / "w", results=tmp_path / "r")  # fmt: skip
    first = run(options)
    assert [r["status"] for r in first["rows"]] == ["ok", "ok"]
    assert ran == ["gen-oc-alpha0.2", "train-oc-alpha0.2-shift5", "eval-oc-alpha0.2-shift5", "gen-oc-alpha0.6",
                   "train-oc-alpha0.6-shift5", "eval-oc-alpha0.6-shift5"]  # fmt: skip
    assert first["command"] == options.command_line() and "--values 0.2,0.6" in first["command"]
    assert (tmp_path / "r" / "sweep.png").is_file()
    # a later session without the work folder, on another machine: the page holds both points, with today's
    # commands, and keeps their stage records, their time and the machine they ran on
    shutil.rmtree(tmp_path / "w")
    page = json.loads((tmp_path / "r" / "sweep.json").read_text())
    (tmp_path / "r" / "sweep.json").write_text(json.dumps(dict(page, device="x86_64 CPU (Elsewhere), 2 cores")))
    again = run(replace(options, resume=True))
    assert len(ran) == 6 and all(r.get("reused") for r in again["rows"])
    assert [r["val"] for r in again["rows"]] == [r["val"] for r in first["rows"]]
    assert [st["name"] for st in again["stages"]] == [st["name"] for st in first["stages"]]
    assert all(st["note"] == stages.REUSED for st in again["stages"]) and again["wall_seconds"] >= 60.0
    assert again["device"] == "x86_64 CPU (Elsewhere), 2 cores"
    # one more point run here beside the reused ones: the page names both machines
    third = run(replace(options, values=(0.2, 0.6, 0.8), resume=True))
    assert len(ran) == 9 and third["device"].endswith(
        "; the points reused from the earlier page: x86_64 CPU (Elsewhere), 2 cores"
    )
    # another budget is another sweep: its points run
    run(replace(options, budget=replace(options.budget, iterations=5), resume=True))
    assert len(ran) == 15


def test_page_judges_each_learner_against_its_own_reference():
    assert (reference_value("protonets", "oc"), reference_value("maml", "oc")) == (0.2, 0.6)

    def row(value: float, one: float, five: float) -> dict:
        point = Point("parameter", "oc", "alpha", value, "shift5")
        val = {"1": dict(accuracy_pct=one, ci95_pct=0.5, tasks=300), "5": dict(accuracy_pct=five, ci95_pct=0.2,
                                                                               tasks=300)}  # fmt: skip
        return {"family": "parameter", "strategy": "oc", "parameter": "alpha", "value": value, "augment": "shift5",
                "key": point.key, "status": "ok", "val": val}  # fmt: skip

    results = {
        "command": "lasium-repro sweep --algo maml",
        "device": "cpu",
        "wall_seconds": 60.0,
        "sizes": dict(tasks=2000, iterations=1000, meta_batch=4, val_tasks=300, seed=0, threads=1, algo="maml"),
        "shared_keys": [],
        "rows": [row(0.2, 85.0, 95.0), row(0.6, 70.0, 90.0)],
        "planned": 2,
        "values": [0.2, 0.6],
    }
    assert best_of(results["rows"], "parameter", "oc")["value"] == 0.2
    picked = next(ln for ln in render(results).splitlines() if ln.startswith("- `oc`"))
    assert "0.2" in picked and "0.6" in picked and "did not hold up" in picked
    results["rows"] = [row(0.2, 60.0, 80.0), row(0.6, 70.0, 90.0)]
    assert best_of(results["rows"], "parameter", "oc")["value"] == 0.6
    results["rows"] = results["rows"][:1]  # one of the two values so far: no pick
    assert "no pick yet" in next(ln for ln in render(results).splitlines() if ln.startswith("- `oc`"))


@pytest.mark.parametrize(
    "page, chart",
    [
        ("sweep.json", "sweep.png"),
        ("sweep-n/sweep.json", "sweep.png"),
        ("sweep-maml/sweep.json", "sweep.png"),
        ("levers/mix/sweep.json", "sweep-mixture.png"),
    ],
)
def test_committed_sweep_pages_regenerate_unchanged(tmp_path, page, chart):
    source = REPO / "results" / page
    (tmp_path / "sweep.json").write_text(source.read_text())
    written = redraw_page(tmp_path / "sweep.json")
    assert tmp_path / chart in written
    committed = source.with_suffix(".md").read_text().splitlines()
    regenerated = (tmp_path / "sweep.md").read_text().splitlines()
    assert [ln for ln in committed if ln not in regenerated] == []  # every committed line, chart links aside, kept
    assert (tmp_path / "sweep.json").read_text() == source.read_text()  # the figures are not rewritten


def test_sweep_help_teaches(tmp_path):
    import subprocess

    out = subprocess.run([sys.executable, "-m", "lasium.repro.cli", "sweep", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--resume" in out.stdout and "validation" in out.stdout
    # every example is its own line (a continuation written with one backslash in the source runs into the next)
    assert all(line.count("lasium-repro sweep") <= 1 and "  --" not in line.strip() for line in out.stdout.splitlines())


def test_a_vae_sweep_page_judges_against_the_authors_vae_value():
    val = {"1": dict(accuracy_pct=85.0, ci95_pct=0.5, tasks=100), "5": dict(accuracy_pct=95.0, ci95_pct=0.2, tasks=100)}
    rows = [{"family": "parameter", "strategy": "n", "parameter": "sigma", "value": v, "augment": "shift5",
             "key": f"n-sigma{v:g}-shift5", "status": "ok", "val": val if v == 2.0 else {**val, "1": {**val["1"],
             "accuracy_pct": 80.0}}} for v in (1.0, 2.0)]  # fmt: skip
    results = {"command": "lasium-repro sweep --generator omniglot-vae", "device": "cpu", "wall_seconds": 1.0,
               "sizes": dict(tasks=20, iterations=2, meta_batch=4, val_tasks=100, seed=0, algo="protonets"),
               "shared_keys": [], "rows": rows, "planned": 2, "values": [1.0, 2.0],
               "generator": {"kind": "vae", "spec": "omniglot-vae", "weights_sha256": "ab" * 32}}  # fmt: skip
    picked = next(ln for ln in render(results).splitlines() if ln.startswith("- `n`"))
    assert picked == "- `n`: sigma 2 (reference value 2, held up)."


@pytest.mark.parametrize(
    ("field", "value", "bad", "refusal", "sentence"),
    [
        ("inner_steps", 10, 0, "must be at least 1", "MAML inner steps in training: `--inner-steps 10`."),
        ("inner_lr", 0.2, 0.0, "must be positive", "MAML inner learning rate in training: `--inner-lr 0.2`."),
    ],
)
def test_maml_inner_loop_options_change_the_training_command_only(tmp_path: Path, field, value, bad, refusal,
                                                                  sentence):  # fmt: skip
    """--inner-steps and --inner-lr: MAML's inner-loop levers; unset, commands stay as the committed sweeps ran
    them; ProtoNets refuse them; the page says the value."""
    from lasium.errors import ConfigError

    option = "--" + field.replace("_", "-")
    point = Point("parameter", "n", "sigma", 0.5, "shift5")
    default = commands(point, PointBudget(algo="maml"), tmp_path)
    changed = commands(point, PointBudget(algo="maml", **{field: value}), tmp_path)
    assert option not in default["train"]
    assert changed["train"][changed["train"].index(option) + 1] == f"{value:g}"
    assert changed["gen"] == default["gen"] and changed["eval"] == default["eval"]  # validation: the protocol's loop
    with pytest.raises(ConfigError, match=f"{option} is a MAML option"):
        PointBudget(**{field: value}).validate()
    with pytest.raises(ConfigError, match=f"{option} {refusal}"):
        PointBudget(algo="maml", **{field: bad}).validate()
    sizes = dict(tasks=4000, iterations=1000, meta_batch=4, val_tasks=1000, seed=0, algo="maml", **{field: value})
    page = {"command": "c", "device": "d", "wall_seconds": 60, "rows": [], "planned": 1, "sizes": sizes}
    assert sentence in render(page)


def test_precision_fixes_the_numerics_of_training_and_scoring_only(tmp_path: Path):
    """--precision: lasium-train's and lasium-eval's numerics (auto differs between machines); auto leaves commands
    as the committed sweeps ran them, generation keeps --gen-precision, and mixtures train and score with it too."""
    from lasium.errors import ConfigError

    point = Point("parameter", "n", "sigma", 0.5, "shift5")
    auto = commands(point, PointBudget(algo="maml"), tmp_path)
    fp32 = commands(point, PointBudget(algo="maml", precision="fp32"), tmp_path)
    assert all("--precision" not in auto[stage] for stage in ("train", "eval"))
    for stage in ("train", "eval"):
        assert fp32[stage][fp32[stage].index("--precision") + 1] == "fp32"
        assert [a for a in fp32[stage] if a not in ("--precision", "fp32")] == auto[stage]
    assert fp32["gen"] == auto["gen"]
    mixed = mixture_commands(Point("mixture", "n", "sigma", None, "shift5", mix="n:0.5+umtra:0.5"),
                             PointBudget(precision="bf16"), tmp_path)  # fmt: skip
    assert all(mixed[stage][mixed[stage].index("--precision") + 1] == "bf16" for stage in ("train", "eval"))
    with pytest.raises(ConfigError, match="--precision must be one of auto, bf16, fp32; got 'fp16'"):
        PointBudget(precision="fp16").validate()
    result = CliRunner().invoke(repro_main, ["sweep", "--precision", "fp16", "--work", str(tmp_path / "w")])
    assert result.exit_code == 2 and "'fp16' is not one of 'auto', 'bf16', 'fp32'" in result.output
    sizes = dict(tasks=4000, iterations=1000, meta_batch=4, val_tasks=1000, seed=0, precision="fp32")
    page = {"command": "c", "device": "d", "wall_seconds": 60, "rows": [], "planned": 1, "sizes": sizes}
    assert "Training and scoring numerics: `--precision fp32`." in render(page)


def test_a_page_says_the_numerics_its_points_trained_and_scored_in():
    """A row records what --precision resolved to (from lasium-eval's report); the page says it once, or that the
    points differ; pages from before the record say nothing."""
    from lasium.repro.sweep import summarise

    point = Point("parameter", "n", "sigma", 0.5, "shift5")
    cells = [dict(shots=s, accuracy_pct=90.0, ci95_pct=0.5, tasks=10) for s in (1, 5)]
    report = {
        "results": cells,
        "episode_digest": "d" * 64,
        "precision": "bf16",
        "checkpoint_state": {"precision": "fp32"},
    }
    row = summarise(point, report, {"train": ["lasium-train"]})
    assert row["numerics"] == {"train": "fp32", "score": "bf16"}
    assert "numerics" not in summarise(point, {"results": cells, "episode_digest": "d" * 64}, {})
    sizes = dict(tasks=4000, iterations=1000, meta_batch=4, val_tasks=1000, seed=0)
    page = {"command": "c", "device": "d", "wall_seconds": 60, "rows": [row], "planned": 1, "sizes": sizes,
            "shared_keys": []}  # fmt: skip
    assert "Device: d. Numerics: trained in fp32, scored in bf16. Wall time" in render(page)
    other = {**row, "key": "n-sigma1-shift5", "value": 1.0, "numerics": {"train": "bf16", "score": "bf16"}}
    assert "Numerics: they differ between points" in render({**page, "rows": [row, other], "planned": 2})
    assert "Numerics" not in render({**page, "rows": [{k: v for k, v in row.items() if k != "numerics"}]})


def test_ema_decay_changes_the_training_command_only(tmp_path: Path):
    """--ema-decay: the weight-average lever; off (0) leaves commands as the committed sweeps ran them."""
    from lasium.errors import ConfigError

    point = Point("parameter", "n", "sigma", 0.5, "shift5")
    plain, averaged = commands(point, PointBudget(), tmp_path), commands(point, PointBudget(ema_decay=0.99), tmp_path)
    assert "--ema-decay" not in plain["train"]
    assert averaged["train"][averaged["train"].index("--ema-decay") + 1] == "0.99"
    assert averaged["gen"] == plain["gen"] and averaged["eval"] == plain["eval"]
    with pytest.raises(ConfigError, match="--ema-decay must be 0"):
        PointBudget(ema_decay=1.0).validate()
    result = CliRunner().invoke(repro_main, ["sweep", "--ema-decay", "-1", "--work", str(tmp_path / "w")])
    assert result.exit_code == 2 and "--ema-decay must be 0 (off)" in result.output
    sizes = dict(tasks=4000, iterations=1000, meta_batch=4, val_tasks=1000, seed=0, ema_decay=0.99)
    page = {"command": "c", "device": "d", "wall_seconds": 60, "rows": [], "planned": 1, "sizes": sizes}
    assert "a moving average of the weights (`lasium-train --ema-decay 0.99`)" in render(page)


def test_adam_rate_changes_the_training_command_only(tmp_path: Path):
    """--lr: the learning-rate lever; left out, commands stay as the committed sweeps ran them."""
    from lasium.errors import ConfigError

    point = Point("parameter", "n", "sigma", 0.5, "shift5")
    plain, faster = commands(point, PointBudget(), tmp_path), commands(point, PointBudget(lr=2e-3), tmp_path)
    assert "--lr" not in plain["train"]
    assert faster["train"][faster["train"].index("--lr") + 1] == "0.002"
    assert faster["gen"] == plain["gen"] and faster["eval"] == plain["eval"]
    with pytest.raises(ConfigError, match="--lr must be positive"):
        PointBudget(lr=0.0).validate()
    sizes = dict(tasks=4000, iterations=1000, meta_batch=4, val_tasks=1000, seed=0, lr=0.002)
    page = {"command": "c", "device": "d", "wall_seconds": 60, "rows": [], "planned": 1, "sizes": sizes}
    assert "Adam's learning rate: `--lr 0.002`." in render(page)


def test_temperature_changes_the_training_command_only(tmp_path: Path):
    """--temperature: ProtoNets' softmax-temperature lever; left at 1, commands stay as the committed sweeps ran them;
    refused for MAML and below or at 0 (one line, exit 2)."""
    from lasium.errors import ConfigError

    point = Point("parameter", "n", "sigma", 0.5, "shift5")
    plain, soft = commands(point, PointBudget(), tmp_path), commands(point, PointBudget(temperature=4.0), tmp_path)
    assert "--temperature" not in plain["train"]
    assert soft["train"][soft["train"].index("--temperature") + 1] == "4"
    assert soft["gen"] == plain["gen"] and soft["eval"] == plain["eval"]
    with pytest.raises(ConfigError, match="--temperature must be positive"):
        PointBudget(temperature=0.0).validate()
    with pytest.raises(ConfigError, match="--temperature is a ProtoNets option"):
        PointBudget(algo="maml", temperature=2.0).validate()
    result = CliRunner().invoke(repro_main, ["sweep", "--temperature", "-1", "--work", str(tmp_path / "w")])
    assert result.exit_code == 2 and "--temperature must be positive" in result.output
    sizes = dict(tasks=4000, iterations=1000, meta_batch=4, val_tasks=1000, seed=0, temperature=4.0)
    page = {"command": "c", "device": "d", "wall_seconds": 60, "rows": [], "planned": 1, "sizes": sizes}
    assert "Softmax temperature of the distances: `--temperature 4`." in render(page)


def test_a_page_names_the_cpu_model_or_the_gpu_it_ran_on(monkeypatch):
    """The same commands and seeds trained MAML to other weights on another CPU model, so a page names it; on a
    machine with CUDA, ``auto`` names the GPU (a sweep used to say "CPU" there); the epoch curve's note that a curve
    was fit on a GPU still reads a CPU page as a CPU's."""
    import os
    import platform

    import torch

    from lasium import runtime
    from lasium.repro import records as sweep_module
    from lasium.repro.lever_sizes import fit_device_note

    monkeypatch.setattr(runtime, "cpu_model", lambda: "Example CPU 9000")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cpu = f"{platform.machine()} CPU (Example CPU 9000), {os.cpu_count()} cores"
    assert sweep_module.machine("auto") == sweep_module.machine("cpu") == cpu
    assert fit_device_note({"device": cpu}) == ""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=None: "NVIDIA H200")
    assert sweep_module.machine("auto") == sweep_module.machine("cuda:0") == "NVIDIA H200"
    assert sweep_module.machine("cpu") == cpu
    assert fit_device_note({"device": "NVIDIA H200"}) == " (fit and scored on NVIDIA H200)"


def test_plan_lists_each_stage_with_its_hours_marks_the_long_ones_and_writes_nothing(tmp_path, monkeypatch):
    """``lasium-repro sweep --plan``: a line per point and per stage, estimated from RATES (here the CPU figures,
    whatever this machine), a stage longer than one sitting marked with how --resume continues it; the estimate
    counts what an interrupted stage already did; a point on the page is done; nothing is run or written."""
    from lasium.repro import sweep_plan
    from lasium.repro.sizes import RATES

    monkeypatch.setattr(sweep_plan, "sweep_rates_key", lambda options, precision=None: "cpu")
    budget = PointBudget(algo="maml", tasks=64000, iterations=16000)
    options = SweepOptions(budget=budget, strategies=("n",), values=(0.5,), only="parameter",
                           work=tmp_path / "w", results=tmp_path / "r")  # fmt: skip
    lines = sweep_plan.plan_sweep(options)
    assert not (tmp_path / "w").exists() and not (tmp_path / "r").exists()
    assert "RATES['cpu']" in lines[0] and lines[1].split()[0] == "n-sigma0.5-shift5" and "to run: ~" in lines[1]
    stages = {ln.split()[0]: ln for ln in lines if ln.startswith("  ") and " ~" in ln and "to run" not in ln}
    assert list(stages) == ["gen-n-sigma0.5", "train-n-sigma0.5-shift5", "eval-n-sigma0.5-shift5"]
    train_hours = 16000 * 4 / RATES["cpu"]["maml"] / 3600
    assert f"~{train_hours:.1f} h, over 3 h: continues exactly" in stages["train-n-sigma0.5-shift5"]
    assert "over" not in stages["gen-n-sigma0.5"]
    # the training was interrupted at its step 12,000 (autosave): a quarter is left
    cmds = commands(Point("parameter", "n", "sigma", 0.5, "shift5"), budget, tmp_path / "w")
    (tmp_path / "w" / "logs").mkdir(parents=True)
    started = {"command": " ".join(cmds["train"]), "seconds": 9000.0}
    (tmp_path / "w" / "logs" / "train-n-sigma0.5-shift5.started.json").write_text(json.dumps(started))
    (tmp_path / "w" / "runs" / "n-sigma0.5-shift5" / "autosave").mkdir(parents=True)
    (tmp_path / "w" / "runs" / "n-sigma0.5-shift5" / "autosave" / "state.json").write_text('{"step": 12000}')
    later = [ln for ln in sweep_plan.plan_sweep(options) if ln.startswith("  train-")]
    left_hours = (RATES["cpu"]["startup"] + 16000 * 4 / RATES["cpu"]["maml"]) / 4 / 3600
    assert later == [f"  {'train-n-sigma0.5-shift5':<32} ~{left_hours:.1f} h"]
    # a finished point on the page (same commands) is done
    (tmp_path / "r").mkdir()
    row = {"key": "n-sigma0.5-shift5", "status": "ok", "commands": {k: " ".join(v) for k, v in cmds.items()},
           "val": {"1": {"accuracy_pct": 88.5}, "5": {"accuracy_pct": 97.25}}}  # fmt: skip
    page = {"rows": [row], "generator": None}
    (tmp_path / "r" / "sweep.json").write_text(json.dumps(page))
    done = sweep_plan.plan_sweep(options)
    assert done[1].split() == ["n-sigma0.5-shift5", "done:", "88.50", "/", "97.25", "(on", "the", "page)"]
    assert done[-1] == "no stage left to run"


def test_plan_from_the_command_line(tmp_path):
    result = CliRunner().invoke(repro_main, ["sweep", "--plan", "--quick", "--strategies", "oc", "--values", "0.2",
                                             "--only", "parameter", "--work", str(tmp_path / "w")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "oc-alpha0.2-shift5" in result.output and "stages to run" in result.output
    assert not (tmp_path / "w").exists()


def test_a_cpu_with_native_bf16_has_its_own_rates_unless_fp32_is_asked_for(monkeypatch):
    import lasium.precision
    from lasium.repro.sizes import RATES, rates_key

    monkeypatch.setattr(lasium.precision, "cpu_has_native_bf16", lambda: True)
    assert [rates_key("cpu"), rates_key("cpu", "bf16"), rates_key("cpu", "fp32"), rates_key("cuda")] == [
        "cpu-bf16", "cpu-bf16", "cpu", "cuda"]  # fmt: skip
    assert RATES["cpu-bf16"]["maml"] > RATES["cpu"]["maml"] and RATES["cpu-bf16"].keys() == RATES["cpu"].keys()
    monkeypatch.setattr(lasium.precision, "cpu_has_native_bf16", lambda: False)
    assert rates_key("cpu") == "cpu"


def test_a_point_records_its_shard_sets_and_trained_weights_by_content(tmp_path):
    from lasium.repro.records import point_outputs
    from lasium.safe_io import file_sha256

    cmds = commands(Point("parameter", "n", "sigma", 0.5, "shift5"), PointBudget(), tmp_path)
    assert point_outputs(cmds) == {}  # nothing made yet (or no longer in the work folder)
    shards = tmp_path / "shards" / "n-sigma0.5"
    shards.mkdir(parents=True)
    listed = [{"file": f"n-sigma0.5-00000{i}.tar", "sha256": c * 64} for i, c in enumerate("ab")]
    (shards / "manifest.json").write_text(json.dumps({"shards": listed, "name": "n-sigma0.5"}))
    (tmp_path / "runs" / "n-sigma0.5-shift5" / "last").mkdir(parents=True)
    (tmp_path / "runs" / "n-sigma0.5-shift5" / "last" / "model.safetensors").write_bytes(b"weights")
    outputs = point_outputs(cmds)
    assert outputs["weights_sha256"] == file_sha256(
        tmp_path / "runs" / "n-sigma0.5-shift5" / "last" / "model.safetensors"
    )
    digest = outputs["shards_sha256"]["n-sigma0.5"]
    # the shards' bytes, in order, whatever else the manifest says
    (shards / "manifest.json").write_text(json.dumps({"shards": listed, "name": "renamed", "tool_version": "9"}))
    assert point_outputs(cmds)["shards_sha256"]["n-sigma0.5"] == digest
    (shards / "manifest.json").write_text(json.dumps({"shards": listed[::-1]}))
    assert point_outputs(cmds)["shards_sha256"]["n-sigma0.5"] != digest


@pytest.mark.slow
@pytest.mark.omniglot
def test_a_quick_sweep_point_made_twice_makes_the_same_shards_weights_and_scores(tmp_path, omniglot_root, monkeypatch):
    """Determinism of a validation point through the real stages: the same command in two work folders generates the
    same shard bytes, trains the same weights and scores the same; the page records both digests."""
    monkeypatch.setenv("LASIUM_DATA", str(omniglot_root))
    budget = PointBudget(tasks=24, iterations=4, val_tasks=10, device="cpu")
    rows = []
    for name in ("a", "b"):
        options = SweepOptions(budget=budget, strategies=("n",), values=(0.5,), only="parameter",
                               work=tmp_path / name / "w", results=tmp_path / name / "r")  # fmt: skip
        rows.append(run(options)["rows"][0])
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert set(rows[0]["outputs"]) == {"shards_sha256", "weights_sha256"} and list(
        rows[0]["outputs"]["shards_sha256"]
    ) == ["n-sigma0.5"]
    assert rows[0]["outputs"] == rows[1]["outputs"] and rows[0]["val"] == rows[1]["val"]


def test_plan_estimates_generation_at_its_own_precision(monkeypatch):
    """lasium-gen runs at --gen-precision, training and scoring at --precision: an fp32 sweep on a bf16 CPU
    generates at the bf16 CPU's rate and trains at the fp32 one."""
    import lasium.precision
    from lasium.repro.sizes import RATES
    from lasium.repro.sweep_plan import stage_seconds

    monkeypatch.setattr(lasium.precision, "cpu_has_native_bf16", lambda: True)
    options = SweepOptions(budget=PointBudget(tasks=4000, device="cpu", precision="fp32", gen_precision="bf16"))
    gen = stage_seconds("lasium-gen", ["--out", "x"], options, 1.0)
    train = stage_seconds("lasium-train", ["--out", "x"], options, 1.0)
    fast, slow = RATES["cpu-bf16"], RATES["cpu"]
    assert gen == fast["startup"] + 4000 / fast["gen"] and train == slow["startup"] + 4000 / slow["protonets"]
    half = stage_seconds("lasium-train", ["--out", "x"], options, 0.5)
    assert half == train / 2
    assert RATES["cpu-bf16"]["fomaml"] > RATES["cpu-bf16"]["maml"]  # first order stays the faster one
