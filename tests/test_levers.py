"""The levers table of the Omniglot page (lasium.repro.levers): which points of the validation experiments in a results
folder each lever compares, against which reference, and the differences with their CIs."""

from __future__ import annotations

import json
import math

from lasium.repro.charts import GAIN, INSIDE, LOSS, Estimate, ForestMark, forest_mark
from lasium.repro.generators import LEGACY_BUNDLED
from lasium.repro.levers_table import chart_estimates, collect, table
from lasium.repro.omniglot_page import render_markdown, write_page


def _val(one: float, five: float, ci1: float = 0.4, ci5: float = 0.2) -> dict:
    return {
        "1": dict(accuracy_pct=one, ci95_pct=ci1, tasks=1000),
        "5": dict(accuracy_pct=five, ci95_pct=ci5, tasks=1000),
    }


def _row(family: str, strategy: str, value: float, augment: str, val: dict, **extra) -> dict:
    parameter = "sigma" if strategy == "n" else "alpha"
    key = f"{strategy}-{parameter}{value:g}-{augment}"
    return {"family": family, "strategy": strategy, "parameter": parameter, "value": value, "augment": augment,
            "key": key, "status": "ok", "val": val, **extra}  # fmt: skip


def _sweep(folder, rows, *, tasks=2000, iterations=1000, algo="protonets", shared=()):
    folder.mkdir(parents=True, exist_ok=True)
    sizes = dict(tasks=tasks, iterations=iterations, meta_batch=4, val_tasks=1000, seed=0, algo=algo)
    results = {"format": "lasium-sweep-omniglot", "sizes": sizes, "rows": rows, "shared_keys": list(shared)}
    (folder / "sweep.json").write_text(json.dumps(results))


def test_each_point_is_compared_with_the_reference_of_its_own_experiment(tmp_path):
    _sweep(
        tmp_path,
        [
            _row("parameter", "n", 0.5, "shift5", _val(91.0, 97.5, 0.3, 0.1)),
            _row("augment", "n", 1.0, "shift5", _val(90.0, 97.0, 0.4, 0.2)),  # shared: σ 1 is the reference
            _row("parameter", "n", 2.0, "shift5", _val(80.0, 92.0)),
            _row("parameter", "ro", 0.5, "shift5", _val(88.0, 96.0)),  # RO without its reference (0.8): no Δ
            _row("parameter", "ro", 0.2, "shift5", _val(87.0, 95.0)),
            _row("augment", "n", 1.0, "shift5-affine", _val(91.5, 97.4)),
            {"family": "augment", "strategy": "n", "value": 1.0, "augment": "none", "key": "x", "status": "failed"},
        ],
        shared=["n-sigma1-shift5"],
    )
    comparisons = collect(tmp_path)
    by = {(c["lever"], c["reference_setting"]): c for c in comparisons}
    n = by[("σ / α", "LASIUM-N σ 1")]
    assert [p["setting"] for p in n["points"]] == ["LASIUM-N σ 0.5", "LASIUM-N σ 1", "LASIUM-N σ 2"]
    half = n["points"][0]["delta"]
    assert half["1"] == {"pct": 1.0, "ci95_pct": round(math.hypot(0.3, 0.4), 2)}
    assert half["5"]["pct"] == 0.5 and n["points"][1]["reference"] and n["points"][1]["delta"] is None
    ro = by[("σ / α", None)]
    assert all(p["delta"] is None for p in ro["points"])
    aug = by[("training augmentation", "`shift5` (LASIUM-N σ 1)")]
    assert [p["setting"] for p in aug["points"]] == ["`shift5` (LASIUM-N σ 1)", "`shift5-affine` (LASIUM-N σ 1)"]
    assert aug["points"][1]["delta"]["1"]["pct"] == 1.5  # the failed point is left out
    lines = table(comparisons)
    assert any("worth +1.00 ± 0.50 / +0.50 ± 0.22" in ln and "LASIUM-N σ 0.5" in ln for ln in lines)
    assert any("no point at the reference" in ln and "LASIUM-RO α 0.5" in ln for ln in lines)
    assert any("| reference | reference |" in ln for ln in lines)
    untried = [ln for ln in lines if ln.startswith("- Not tried yet")]
    assert untried == [
        "- Not tried yet with ProtoNets: task mixture, budget (iterations, distinct tasks), training ways, "
        "training shots, training queries, anchor distance ε, distance to the prototypes, generator, learning-rate "
        "schedule, meta-batch (tasks per step), Adam's learning rate, moving average of the weights, softmax "
        "temperature, GAN training epochs, VAE training epochs.",
        "- Not tried yet with MAML: σ / α, training augmentation, budget (iterations, distinct tasks), training "
        "shots, training queries, anchor distance ε, generator, inner steps in training, learning-rate schedule, "
        "meta-batch (tasks per step), Adam's learning rate, inner learning rate in training, moving average of the "
        "weights.",
    ]


def test_budget_lever_compares_experiments_that_differ_in_their_budget(tmp_path):
    point = _row("parameter", "n", 0.5, "shift5", _val(90.0, 97.0))
    _sweep(tmp_path / "sweep-n", [point, _row("parameter", "n", 0.25, "shift5", _val(89.0, 96.0))])
    _sweep(tmp_path / "levers" / "budget-4x", [{**point, "val": _val(92.5, 98.0)}], tasks=8000, iterations=4000)
    _sweep(tmp_path / "levers" / "budget-2x", [{**point, "val": _val(91.0, 97.6)}], tasks=4000, iterations=2000)
    budget = next(c for c in collect(tmp_path) if c["lever"].startswith("budget"))
    assert [p["setting"] for p in budget["points"]] == [
        "2,000 tasks, 1,000 × 4",
        "4,000 tasks, 2,000 × 4",
        "8,000 tasks, 4,000 × 4",
    ]
    assert budget["points"][0]["reference"] and budget["points"][2]["delta"]["1"]["pct"] == 2.5
    assert budget["sources"] == ["levers/budget-2x/sweep.json", "levers/budget-4x/sweep.json", "sweep-n/sweep.json"]
    assert any("8,000 tasks, 4,000 × 4, worth +2.50" in ln for ln in table([budget]))


def test_generator_epochs_and_mixtures_come_from_their_experiments(tmp_path):
    curve = {"format": "lasium-accuracy-vs-gan-epochs", "sizes": dict(tasks=4000, iterations=1000, meta_batch=4,
             val_tasks=1000), "rows": [{"epochs": 50, "status": "ok", "val": _val(88.0, 96.0)},
                                       {"epochs": 6, "status": "ok", "val": _val(70.0, 88.0)}]}  # fmt: skip
    (tmp_path / "accuracy-vs-gan-epochs.json").write_text(json.dumps(curve))
    mix = [
        {"family": "mixture", "mix": "n:1", "augment": "shift5-affine", "status": "ok", "val": _val(90.0, 97.0)},
        {"family": "mixture", "mix": "n:0.5+umtra:0.5", "augment": "shift5-affine", "status": "ok",
         "val": _val(91.0, 97.2)},
    ]  # fmt: skip
    _sweep(tmp_path / "levers" / "mix", mix)
    levers = {c["lever"]: c for c in collect(tmp_path)}
    gan = levers["GAN training epochs"]
    assert [p["setting"] for p in gan["points"]] == ["6 epochs", "50 epochs"] and gan["points"][1]["delta"]["1"][
        "pct"
    ] == 18.0
    assert levers["task mixture"]["points"][1]["setting"] == "n × 0.5 + umtra × 0.5 (`shift5-affine`)"
    assert levers["task mixture"]["points"][1]["delta"]["5"]["pct"] == 0.2
    data = json.loads((tmp_path / "levers" / "mix" / "sweep.json").read_text())
    data["sizes"]["distance"] = "mean-squared"  # a mixture sweep trained with another distance says so
    (tmp_path / "levers" / "mix" / "sweep.json").write_text(json.dumps(data))
    mixture = next(c for c in collect(tmp_path) if c["lever"] == "task mixture")
    assert mixture["points"][1]["setting"] == "n × 0.5 + umtra × 0.5 (`shift5-affine`, `mean-squared`)"


def test_a_lever_with_one_point_or_an_unreadable_experiment_is_left_out(tmp_path):
    _sweep(tmp_path / "levers" / "mix", [{"family": "mixture", "mix": "n:1", "augment": "x", "status": "ok",
                                          "val": _val(90.0, 97.0)}])  # fmt: skip
    (tmp_path / "sweep.json").write_text("{not json")
    assert collect(tmp_path) == [] and table([]) == []


def test_the_omniglot_page_shows_the_levers_of_its_folder_and_keeps_them_in_its_json(tmp_path):
    _sweep(tmp_path, [_row("parameter", "oc", 0.2, "shift5", _val(88.0, 96.0)),
                      _row("parameter", "oc", 0.5, "shift5", _val(85.0, 95.0))])  # fmt: skip
    (tmp_path / "accuracy-vs-gan-epochs.png").write_bytes(b"png")
    results = {"format": "lasium-repro-omniglot", "rows": [], "stages": []}
    written, _ = write_page(results, tmp_path)
    assert written["levers"][0]["lever"] == "σ / α"
    md = (tmp_path / "omniglot.md").read_text()
    assert "## Levers on validation tasks" in md and "| σ / α | ProtoNets | LASIUM-OC α 0.5 |" in md
    assert "![accuracy-vs-gan-epochs.png](accuracy-vs-gan-epochs.png)" in md
    stored = json.loads((tmp_path / "omniglot.json").read_text())
    assert "Levers on validation tasks" in render_markdown(stored)  # redrawn from its JSON alone
    assert "Levers" not in render_markdown(results)
    # the levers as a picture, above the table, drawn from the figures the JSON keeps
    assert stored["images"]["levers"] == ["levers.png"] and (tmp_path / "levers.png").stat().st_size > 10_000
    assert md.index("](levers.png)") < md.index("| σ / α | ProtoNets |")
    first = (tmp_path / "levers.png").read_bytes()
    (tmp_path / "levers.png").unlink()
    write_page(stored, tmp_path)
    assert (tmp_path / "levers.png").read_bytes() == first  # the same figures give the same picture


def test_the_levers_chart_shows_each_comparisons_best_setting_other_than_its_reference(tmp_path):
    """A point per comparison with a reference: its best other setting (by mean accuracy), even where the reference
    is best (a loss, then); ProtoNets' rows first; a comparison without a reference point has none."""
    _sweep(tmp_path, [_row("parameter", "n", 0.5, "shift5", _val(91.0, 97.5, 0.3, 0.1)),
                      _row("parameter", "n", 1.0, "shift5", _val(90.0, 97.0)),
                      _row("parameter", "n", 2.0, "shift5", _val(80.0, 92.0)),
                      _row("parameter", "ro", 0.5, "shift5", _val(88.0, 96.0)),  # no RO reference (0.8): no point
                      _row("parameter", "ro", 0.2, "shift5", _val(87.0, 95.0))])  # fmt: skip
    maml = [_row("parameter", "n", 0.5, "shift5", _val(89.0, 97.6)),
            _row("parameter", "n", 1.0, "shift5", _val(88.2, 97.5)),
            _row("parameter", "n", 0.25, "shift5", _val(87.0, 97.7))]  # fmt: skip
    _sweep(tmp_path / "levers" / "maml-parameter-n", maml, algo="maml")
    comparisons = collect(tmp_path)
    expected = [
        Estimate("ProtoNets · σ / α", 1.0, 0.5),  # σ 0.5 over the authors' σ 1 (not σ 2's −10)
        Estimate("MAML · σ / α", -0.8, 0.57),  # the reference σ 0.5 is best: σ 1 came closest
    ]
    assert chart_estimates(comparisons, "1") == expected
    assert chart_estimates(comparisons[::-1], "1") == expected  # ProtoNets' rows first, whatever the order given
    assert chart_estimates(comparisons, "5") == [Estimate("ProtoNets · σ / α", 0.5, 0.22),
                                                 Estimate("MAML · σ / α", -0.1, 0.28)]  # fmt: skip


def test_the_levers_chart_shows_an_axis_at_its_end_and_keeps_a_comparisons_slot_across_shots():
    """On an axis (budget, epochs) the largest setting, not a noisy peak; one comparison keeps its slot on its row in
    both panels even where it lacks a shot; a ‡ point is marked."""

    def point(setting, one, five=None, reference=False, elsewhere=False):
        delta = None if reference else {"1": {"pct": one, "ci95_pct": 0.5}} | (
            {"5": {"pct": five, "ci95_pct": 0.2}} if five is not None else {})  # fmt: skip
        val = {"1": {"accuracy_pct": 90.0 + one, "ci95_pct": 0.4}}
        return {"setting": setting, "reference": reference, "val": val, "delta": delta, "elsewhere": elsewhere}

    epochs = {
        "lever": "GAN training epochs",
        "learner": "protonets",
        "ordered": True,
        "points": [point("10", 0.0, reference=True), point("20", 2.5, 1.0), point("48", 1.3, 0.3)],
    }
    only_one_shot = {
        "lever": "GAN training epochs",
        "learner": "protonets",
        "ordered": False,
        "points": [point("a", 0.0, reference=True), point("b", -0.2, elsewhere=True)],
    }
    third = {
        "lever": "GAN training epochs",
        "learner": "protonets",
        "ordered": False,
        "points": [point("a", 0.0, reference=True), point("c", 0.7, 0.1), point("d", 0.9, 0.0)],
    }
    comparisons = [epochs, only_one_shot, third]
    one, five = chart_estimates(comparisons, "1"), chart_estimates(comparisons, "5")
    row = "ProtoNets · GAN training epochs"
    assert one == [Estimate(row, 1.3, 0.5, 0), Estimate(row, -0.2, 0.5, 1, elsewhere=True), Estimate(row, 0.9, 0.5, 2)]
    assert five == [Estimate(row, 0.3, 0.2, 0), Estimate(row, 0.0, 0.2, 2)]  # slot 1 has no 5-shot Δ: left empty


def test_a_forest_mark_says_gain_loss_or_inside_and_keeps_off_axis_values_at_the_edge():
    assert forest_mark(Estimate("r", 1.0, 0.5), 5.0) == ForestMark(1.0, 0.5, 1.5, GAIN, "o", True)
    assert forest_mark(Estimate("r", -1.0, 0.5), 5.0) == ForestMark(-1.0, -1.5, -0.5, LOSS, "o", True)
    assert forest_mark(Estimate("r", 0.3, 0.5), 5.0) == ForestMark(0.3, -0.2, 0.8, INSIDE, "o", False)
    assert forest_mark(Estimate("r", 0.3, 0.5, elsewhere=True), 5.0).marker == "D"
    assert forest_mark(Estimate("r", 17.06, 0.85), 5.0) == ForestMark(5.0, 5.0, 5.0, GAIN, ">", True, "+17.1")
    assert forest_mark(Estimate("r", -7.0, 0.5), 5.0) == ForestMark(-5.0, -5.0, -5.0, LOSS, "<", True, "-7.0")
    assert forest_mark(Estimate("r", 4.8, 0.6), 5.0) == ForestMark(4.8, 4.2, 5.0, GAIN, "o", True)  # whisker cut
    assert forest_mark(Estimate("r", math.nan, 0.5), 5.0) is None
    assert forest_mark(Estimate("r", 1.0, math.inf), 5.0) is None


def test_without_matplotlib_the_page_keeps_a_levers_picture_only_while_it_has_levers_and_the_file(
    tmp_path, monkeypatch
):
    from lasium.repro import charts

    _sweep(tmp_path, [_row("parameter", "oc", 0.2, "shift5", _val(88.0, 96.0)),
                      _row("parameter", "oc", 0.5, "shift5", _val(85.0, 95.0))])  # fmt: skip
    results = {"format": "lasium-repro-omniglot", "rows": [], "stages": []}
    written, _ = write_page(results, tmp_path)
    monkeypatch.setattr(charts, "new_figure", lambda *a: (_ for _ in ()).throw(charts.ChartsUnavailable("no mpl")))
    again, _ = write_page(written, tmp_path)
    assert again["images"]["levers"] == ["levers.png"]  # the picture it drew stays listed
    (tmp_path / "levers.png").unlink()
    gone, _ = write_page(written, tmp_path)
    assert "levers" not in gone["images"] and "levers.png" not in (tmp_path / "omniglot.md").read_text()
    (tmp_path / "sweep.json").unlink()  # no levers any more: no picture of them, even if the file is there
    (tmp_path / "levers.png").write_bytes(b"png")
    none, _ = write_page(written, tmp_path)
    assert "levers" not in none["images"]


def test_a_sweep_on_another_generator_names_it_beside_its_settings(tmp_path):
    generator = {"kind": "gan", "spec": "runs/gan-long/epoch-0050", "weights_sha256": "ab" * 32}
    _sweep(tmp_path / "levers" / "gan-50", [_row("parameter", "n", 0.5, "shift5", _val(92.0, 98.0)),
                                            _row("parameter", "n", 1.0, "shift5", _val(91.0, 97.5))])  # fmt: skip
    results = json.loads((tmp_path / "levers" / "gan-50" / "sweep.json").read_text())
    (tmp_path / "levers" / "gan-50" / "sweep.json").write_text(json.dumps({**results, "generator": generator}))
    (c,) = collect(tmp_path)
    assert (
        c["points"][0]["setting"] == "LASIUM-N σ 0.5 (GAN `runs/gan-long/epoch-0050` (weights sha256 `abababababab`))"
    )
    assert c["reference_setting"].startswith("LASIUM-N σ 1 (GAN")


def test_a_vae_sweep_is_judged_against_the_authors_vae_value(tmp_path):
    rows = [_row("parameter", "n", s, "shift5", _val(80.0 + s, 95.0)) for s in (0.5, 1.0, 2.0)]
    _sweep(tmp_path / "levers" / "vae-n", rows)
    path = tmp_path / "levers" / "vae-n" / "sweep.json"
    vae = {"kind": "vae", "spec": "omniglot-vae", "weights_sha256": "cd" * 32}
    path.write_text(json.dumps({**json.loads(path.read_text()), "generator": vae}))
    (c,) = collect(tmp_path)
    assert c["reference_setting"].startswith("LASIUM-N σ 2 (VAE")  # ProtoNets' VAE σ is 2.0, the GAN's 1.0
    assert c["points"][0]["delta"]["1"]["pct"] == -1.5


def test_training_ways_lever_compares_sweeps_that_differ_in_their_ways(tmp_path):
    point = _row("parameter", "n", 0.5, "shift5", _val(91.0, 97.5))
    _sweep(tmp_path / "levers" / "ways-5", [point], tasks=4000)
    _sweep(tmp_path / "levers" / "ways-20", [{**point, "val": _val(92.0, 97.9)}], tasks=4000)
    data = json.loads((tmp_path / "levers" / "ways-20" / "sweep.json").read_text())
    data["sizes"].update(ways=20, epsilon=204.2)
    (tmp_path / "levers" / "ways-20" / "sweep.json").write_text(json.dumps(data))
    ways = next(c for c in collect(tmp_path) if c["lever"] == "training ways")
    assert [p["setting"] for p in ways["points"]] == [
        "5-way training tasks (4,000 tasks, 1,000 × 4)",
        "20-way training tasks, ε 204.2 (4,000 tasks, 1,000 × 4)",
    ]
    assert ways["points"][0]["reference"] and ways["points"][1]["delta"]["1"]["pct"] == 1.0
    assert not any(c["lever"].startswith("budget") for c in collect(tmp_path))  # not read as another budget


def test_training_shots_lever_compares_shots_within_each_ways_and_budget(tmp_path):
    point = _row("parameter", "n", 0.5, "shift5", _val(91.0, 97.5))
    for name, ways, shots, five in (("shots-1-w20", 20, 1, 97.9), ("shots-5-w20", 20, 5, 98.4), ("shots-5", 5, 5, 98)):
        _sweep(tmp_path / "levers" / name, [{**point, "val": _val(92.0, five)}], tasks=4000)
        data = json.loads((tmp_path / "levers" / name / "sweep.json").read_text())
        data["sizes"].update(ways=ways, shots=shots, epsilon=204.2 if ways == 20 else None)
        (tmp_path / "levers" / name / "sweep.json").write_text(json.dumps(data))
    (shots,) = [c for c in collect(tmp_path) if c["lever"] == "training shots"]  # the 5-way point has no reference
    assert [p["setting"] for p in shots["points"]] == [
        "1-shot 20-way training tasks, ε 204.2 (4,000 tasks, 1,000 × 4)",
        "5-shot 20-way training tasks, ε 204.2 (4,000 tasks, 1,000 × 4)",
    ]
    assert shots["points"][0]["reference"] and shots["points"][1]["delta"]["5"]["pct"] == 0.5
    assert not any(c["lever"] == "training ways" for c in collect(tmp_path))  # levers/shots* is not a ways sweep


def test_distance_lever_compares_the_protonets_distances_within_one_budget(tmp_path):
    point = _row("parameter", "n", 0.5, "shift5", _val(91.0, 97.5))
    for name, distance, one, tasks, iterations in (
        ("distance-squared-euclidean", None, 90.0, 4000, 1000),
        ("distance-mean", "mean-squared", 91.5, 4000, 1000),
        ("lr-constant-8k", None, 94.0, 32000, 8000),  # a constant-rate sweep is a reference at its budget
        ("distance-mean-8k", "mean-squared", 94.5, 32000, 8000),
    ):
        _sweep(tmp_path / "levers" / name, [{**point, "val": _val(one, 98.0)}], tasks=tasks, iterations=iterations)
        if distance is not None:
            data = json.loads((tmp_path / "levers" / name / "sweep.json").read_text())
            data["sizes"]["distance"] = distance
            (tmp_path / "levers" / name / "sweep.json").write_text(json.dumps(data))
    found = [c for c in collect(tmp_path) if c["lever"] == "distance to the prototypes"]
    assert [[p["setting"] for p in c["points"]] for c in found] == [
        ["`squared-euclidean` (4,000 tasks, 1,000 × 4)", "`mean-squared` (4,000 tasks, 1,000 × 4)"],
        ["`squared-euclidean` (32,000 tasks, 8,000 × 4)", "`mean-squared` (32,000 tasks, 8,000 × 4)"],
    ]
    assert all(c["points"][0]["reference"] for c in found)
    assert [c["points"][1]["delta"]["1"]["pct"] for c in found] == [1.5, 0.5]
    assert not any(c["lever"].startswith("budget") for c in collect(tmp_path))  # not read as another budget


def test_learning_rate_lever_compares_schedules_within_each_budget(tmp_path):
    point = _row("parameter", "n", 0.5, "shift5", _val(91.0, 97.5))
    for name, tasks, iterations, schedule, one in (
        ("lr-constant-1k", 4000, 1000, "constant", 90.0),
        ("lr-cosine-1k", 4000, 1000, "cosine", 90.5),
        ("lr-constant-8k", 32000, 8000, "constant", 94.0),
        ("lr-cosine-8k", 32000, 8000, "cosine", 95.0),
    ):
        _sweep(tmp_path / "levers" / name, [{**point, "val": _val(one, 98.0)}], tasks=tasks, iterations=iterations)
        if schedule != "constant":
            data = json.loads((tmp_path / "levers" / name / "sweep.json").read_text())
            data["sizes"]["lr_schedule"] = schedule
            (tmp_path / "levers" / name / "sweep.json").write_text(json.dumps(data))
    found = [c for c in collect(tmp_path) if c["lever"] == "learning-rate schedule"]
    assert [[p["setting"] for p in c["points"]] for c in found] == [
        ["`constant` (4,000 tasks, 1,000 × 4)", "`cosine` (4,000 tasks, 1,000 × 4)"],
        ["`constant` (32,000 tasks, 8,000 × 4)", "`cosine` (32,000 tasks, 8,000 × 4)"],
    ]
    assert [c["points"][1]["delta"]["1"]["pct"] for c in found] == [0.5, 1.0]  # each against its own budget
    assert all(c["points"][0]["reference"] and c["learner"] == "protonets" for c in found)
    assert not any(c["lever"].startswith("budget") for c in collect(tmp_path))  # not read as another budget


def test_learning_rate_lever_compares_whole_runs_that_differ_in_their_schedule_alone(tmp_path):
    def curve(name, schedule, one, *, shards="s20", last=8000):
        train = dict(algo="protonets", augment="shift5-affine", lr=0.001, meta_batch=4, iterations=8000,
                     shards=[shards], seed=0, ways=20, lr_schedule=schedule)  # fmt: skip
        rows = [{"key": f"step-{s:07d}", "step": s, "tasks_seen": 4 * s, "status": "ok", "val": _val(v, 98.5)}
                for s, v in ((2000, one + 1.0), (last, one))]  # fmt: skip
        sizes = dict(algo="protonets", tasks=32000, iterations=8000, meta_batch=4, val_tasks=1000, seed=0)
        results = {"format": "lasium-step-curve", "run": f"runs/{name}", "train": train, "rows": rows, "sizes": sizes}
        (tmp_path / "levers" / f"steps-{name}").mkdir(parents=True)
        (tmp_path / "levers" / f"steps-{name}" / "step-curve.json").write_text(json.dumps(results))

    curve("w20", None, 94.2)  # a run from before the option: constant
    curve("w20-cosine", "cosine", 95.0)
    curve("other", "cosine", 99.0, shards="s5")  # another training: nothing to compare it with
    curve("short", "cosine", 99.0, last=4000)  # not at its last step: no whole run
    (c,) = [c for c in collect(tmp_path) if c["lever"] == "learning-rate schedule"]
    assert [p["setting"] for p in c["points"]] == [
        "`constant` (run `runs/w20`, 8,000 × 4, 20-way tasks)",
        "`cosine` (run `runs/w20-cosine`, 8,000 × 4, 20-way tasks)",
    ]
    assert c["points"][0]["reference"] and c["points"][1]["delta"]["1"]["pct"] == 0.8


def test_budget_lever_compares_whole_annealed_runs_of_one_training_at_their_last_step(tmp_path):
    """Annealed runs of 8,000 and 16,000 steps on sets named alike but for their size are one budget comparison; a
    run on another set, a constant-rate run and a checkpoint before a run's end are not in it."""

    def curve(name, iterations, steps, one, *, schedule="cosine", shards="runs/shards/n-maml-{}", augment="a"):
        tasks = 4 * iterations
        train = dict(algo="maml", augment=augment, lr=0.001, meta_batch=4, iterations=iterations,
                     shards=[shards.format(tasks)], seed=0, ways=5, lr_schedule=schedule)  # fmt: skip
        rows = [{"key": f"step-{s:07d}", "step": s, "tasks_seen": 4 * s, "status": "ok", "val": _val(v, 98.5)}
                for s, v in zip(steps, one)]  # fmt: skip
        sizes = dict(algo="maml", tasks=tasks, iterations=iterations, meta_batch=4, val_tasks=1000, seed=0)
        results = {"format": "lasium-step-curve", "run": f"runs/{name}", "train": train, "rows": rows, "sizes": sizes}
        (tmp_path / "levers" / f"steps-{name}").mkdir(parents=True)
        (tmp_path / "levers" / f"steps-{name}" / "step-curve.json").write_text(json.dumps(results))

    curve("x16-cosine", 16000, [8000, 16000], [99.0, 95.5])  # step 8,000 of a 16,000-step schedule: no whole run
    curve("x8-cosine", 8000, [8000], [94.0])
    curve("x8-constant", 8000, [8000], [93.0], schedule=None)  # constant rates: the step lever's, not this one
    curve("x4-constant", 4000, [4000], [92.0], schedule=None)
    curve("x4-other-set", 4000, [4000], [90.0], shards="runs/shards/n-maml-w20-{}")  # another recipe of set
    curve("x4-other-augment", 4000, [4000], [91.0], augment="b")  # another training
    found = [
        c for c in collect(tmp_path)
        if c["lever"] == "budget (iterations, distinct tasks)" and c["reference"].startswith("the shortest annealed")
    ]  # fmt: skip
    (c,) = found
    assert [p["setting"] for p in c["points"]] == [
        "8,000 × 4 (32,000 distinct tasks), `cosine` rate, run `runs/x8-cosine`",
        "16,000 × 4 (64,000 distinct tasks), `cosine` rate, run `runs/x16-cosine`",
    ]
    assert c["points"][0]["reference"] and c["points"][1]["delta"]["1"]["pct"] == 1.5
    assert c["ordered"] and c["learner"] == "maml"
    assert c["points"][1]["budget"] == "whole runs, each scored at its last step, 1000 val tasks"


def test_a_20_way_sweep_with_another_distance_is_compared_in_both_levers_against_its_own_reference(tmp_path):
    """levers/ways-20-mean-squared differs from levers/ways-20 in its distance and from levers/distance-mean-squared in
    its ways: the distance lever compares it with the first, the ways lever with the second, never across both."""
    point = _row("parameter", "n", 0.5, "shift5", _val(91.0, 97.5))
    for name, ways, distance, one in (
        ("ways-5", 5, None, 90.0),
        ("ways-20", 20, None, 93.0),
        ("distance-squared-euclidean", 5, None, 90.5),
        ("distance-mean-squared", 5, "mean-squared", 92.0),
        ("ways-20-mean-squared", 20, "mean-squared", 94.0),
    ):
        _sweep(tmp_path / "levers" / name, [{**point, "val": _val(one, 98.0)}], tasks=4000)
        data = json.loads((tmp_path / "levers" / name / "sweep.json").read_text())
        if ways != 5:
            data["sizes"].update(ways=ways, epsilon=204.2)
        if distance:
            data["sizes"]["distance"] = distance
        (tmp_path / "levers" / name / "sweep.json").write_text(json.dumps(data))
    comparisons = collect(tmp_path)
    ways = [c for c in comparisons if c["lever"] == "training ways"]
    assert [[(p["setting"], p["delta"] and p["delta"]["1"]["pct"]) for p in c["points"]] for c in ways] == [
        [("5-way training tasks (4,000 tasks, 1,000 × 4)", None),
         ("20-way training tasks, ε 204.2 (4,000 tasks, 1,000 × 4)", 3.0)],
        [("5-way training tasks, `mean-squared` (4,000 tasks, 1,000 × 4)", None),
         ("20-way training tasks, ε 204.2, `mean-squared` (4,000 tasks, 1,000 × 4)", 2.0)],
    ]  # fmt: skip
    distance = [c for c in comparisons if c["lever"] == "distance to the prototypes"]
    assert [[(p["setting"], p["delta"] and p["delta"]["1"]["pct"]) for p in c["points"]] for c in distance] == [
        [("`squared-euclidean` (4,000 tasks, 1,000 × 4)", None), ("`mean-squared` (4,000 tasks, 1,000 × 4)", 1.5)],
        [("`squared-euclidean` (20-way, 4,000 tasks, 1,000 × 4)", None),
         ("`mean-squared` (20-way, 4,000 tasks, 1,000 × 4)", 1.0)],
    ]  # fmt: skip


def test_an_epoch_curve_of_a_gpu_fit_is_its_own_comparison_and_names_its_device(tmp_path):
    """results/gpu-*/accuracy-vs-gan-epochs.json (benchmarks/gpu_check.sh's fit) is another fit: compared within
    itself, from its own fewest epochs, never against the CPU fits' points."""

    def curve(points, device):
        rows = [{"epochs": e, "status": "ok", "val": _val(one, 96.0)} for e, one in points]
        sizes = dict(tasks=4000, iterations=1000, meta_batch=4, val_tasks=1000)
        return json.dumps({"format": "lasium-accuracy-vs-gan-epochs", "device": device, "sizes": sizes, "rows": rows})

    (tmp_path / "accuracy-vs-gan-epochs.json").write_text(curve([(10, 89.0), (20, 91.0)], "x86_64 CPU, 2 cores"))
    (tmp_path / "gpu-h200").mkdir()
    (tmp_path / "gpu-h200" / "accuracy-vs-gan-epochs.json").write_text(curve([(0, 61.0), (200, 91.5)], "NVIDIA H200"))
    found = [c for c in collect(tmp_path) if c["lever"] == "GAN training epochs"]
    assert [c["sources"] for c in found] == [["accuracy-vs-gan-epochs.json"], ["gpu-h200/accuracy-vs-gan-epochs.json"]]
    assert [[p["setting"] for p in c["points"]] for c in found] == [
        ["10 epochs", "20 epochs"],
        ["0 epochs (fit and scored on NVIDIA H200)", "200 epochs (fit and scored on NVIDIA H200)"],
    ]
    assert [c["points"][1]["delta"]["1"]["pct"] for c in found] == [2.0, 30.5]


def test_generator_lever_compares_another_gan_with_the_bundled_one_at_the_same_recipe(tmp_path):
    point = _row("parameter", "n", 0.5, "shift5", _val(91.0, 97.5))
    bundled = {"spec": "omniglot-gan", "kind": "gan", "name": "omniglot-gan", "weights_sha256": "c1" * 32}
    longer = {"spec": "runs/gan-207", "kind": "gan", "name": "omniglot-gan", "weights_sha256": "1d" * 32,
              "epochs_done": 207}  # fmt: skip
    for name, generator, one, extra in (
        ("distance-squared-euclidean", bundled, 90.8, {}),
        ("gan-207", longer, 92.0, {}),
        ("distance-mean-squared", bundled, 92.4, {"distance": "mean-squared"}),  # another lever's point: left out
    ):
        _sweep(tmp_path / "levers" / name, [{**point, "val": _val(one, 97.6)}], tasks=4000)
        data = json.loads((tmp_path / "levers" / name / "sweep.json").read_text())
        data["generator"] = generator
        data["sizes"].update(extra)
        (tmp_path / "levers" / name / "sweep.json").write_text(json.dumps(data))
    (found,) = [c for c in collect(tmp_path) if c["lever"] == "generator"]
    assert [p["setting"] for p in found["points"]] == [
        "GAN `omniglot-gan` (weights sha256 `c1c1c1c1c1c1`) (4,000 tasks, 1,000 × 4)",
        "GAN `runs/gan-207` (weights sha256 `1d1d1d1d1d1d`), 207 epochs (4,000 tasks, 1,000 × 4)",
    ]
    assert found["points"][0]["reference"] and found["points"][1]["delta"]["1"]["pct"] == 1.2
    for name, generator, one in (("gan-bundled-seed1", bundled, 91.0), ("gan-207-seed1", longer, 91.5)):
        _sweep(tmp_path / "levers" / name, [{**point, "val": _val(one, 97.6)}], tasks=4000)
        data = json.loads((tmp_path / "levers" / name / "sweep.json").read_text())
        data["generator"], data["sizes"]["seed"] = generator, 1
        (tmp_path / "levers" / name / "sweep.json").write_text(json.dumps(data))
    seed0, seed1 = [c for c in collect(tmp_path) if c["lever"] == "generator"]  # one comparison per seed
    assert seed0["points"][1]["delta"]["1"]["pct"] == 1.2 and seed1["points"][1]["delta"]["1"]["pct"] == 0.5
    assert seed1["points"][1]["setting"].endswith("207 epochs (4,000 tasks, 1,000 × 4, seed 1)")


def test_generator_lever_compares_within_one_distance_ways_and_learner(tmp_path):
    """Another GAN with the mean-squared distance, with 20-way tasks, and with MAML is compared with the bundled
    GAN's sweep of that same recipe (levers/distance-mean-squared, levers/ways-20-mean-squared,
    levers/maml-parameter-n), never with a sweep of another recipe."""
    bundled = {"spec": "omniglot-gan", "kind": "gan", "name": "omniglot-gan", "weights_sha256": "c1" * 32}
    longer = {"spec": "gan-207", "kind": "gan", "name": "omniglot-gan", "weights_sha256": "1d" * 32}
    ms, w20 = {"distance": "mean-squared"}, {"distance": "mean-squared", "ways": 20, "epsilon": 204.2}
    for name, generator, one, extra, algo, sigma in (
        ("distance-squared-euclidean", bundled, 90.0, {}, "protonets", 0.5),
        ("distance-mean-squared", bundled, 92.0, ms, "protonets", 0.5),
        ("gan-207-mean-squared", longer, 92.5, ms, "protonets", 0.5),
        ("ways-20-mean-squared", bundled, 94.0, w20, "protonets", 0.5),
        ("gan-207-w20-mean-squared", longer, 95.0, w20, "protonets", 0.5),
        ("maml-parameter-n", bundled, 89.0, {}, "maml", 0.5),
        ("gan-207-maml", longer, 89.5, {}, "maml", 0.5),
    ):
        point = _row("parameter", "n", sigma, "shift5", _val(one, 97.6))
        _sweep(tmp_path / "levers" / name, [point], tasks=4000, algo=algo)
        data = json.loads((tmp_path / "levers" / name / "sweep.json").read_text())
        data["generator"] = generator
        data["sizes"].update(extra)
        (tmp_path / "levers" / name / "sweep.json").write_text(json.dumps(data))
    found = [c for c in collect(tmp_path) if c["lever"] == "generator"]
    assert [(c["learner"], [p["delta"] and p["delta"]["1"]["pct"] for p in c["points"]]) for c in found] == [
        ("protonets", [None, 0.5]),
        ("protonets", [None, 1.0]),
        ("maml", [None, 0.5]),
    ]
    assert found[1]["points"][1]["setting"] == (
        "GAN `gan-207` (weights sha256 `1d1d1d1d1d1d`) (20-way, 4,000 tasks, 1,000 × 4, `mean-squared`)"
    )


def test_training_ways_lever_compares_within_one_generator(tmp_path):
    """Another GAN's 20-way and 40-way sweeps are compared with that GAN's 5-way sweep of the same distance
    (levers/gan*), the bundled GAN's with the bundled GAN's; a GAN's sweep without a 5-way twin compares nothing."""
    bundled = {"spec": "omniglot-gan", **LEGACY_BUNDLED["omniglot-gan"]}
    longer = {"spec": "gan-207", "kind": "gan", "name": "omniglot-gan", "weights_sha256": "1d" * 32}
    ms = {"distance": "mean-squared"}
    for name, generator, one, extra in (
        ("distance-mean-squared", bundled, 92.0, ms),
        ("ways-20-mean-squared", bundled, 94.0, {**ms, "ways": 20, "epsilon": 204.2}),
        ("gan-207-mean-squared", longer, 93.0, ms),
        ("gan-207-w20-mean-squared", longer, 95.0, {**ms, "ways": 20, "epsilon": 204.2}),
        ("gan-207-w40-mean-squared", longer, 95.5, {**ms, "ways": 40, "epsilon": 187.8}),
        ("gan-207", longer, 92.0, {}),  # squared Euclidean: no wider sweep of its own
    ):
        _sweep(tmp_path / "levers" / name, [_row("parameter", "n", 0.5, "shift5", _val(one, 97.6))], tasks=4000)
        data = json.loads((tmp_path / "levers" / name / "sweep.json").read_text())
        data["generator"] = generator
        data["sizes"].update(extra)
        (tmp_path / "levers" / name / "sweep.json").write_text(json.dumps(data))
    found = [c for c in collect(tmp_path) if c["lever"] == "training ways"]
    assert [[p["delta"] and p["delta"]["1"]["pct"] for p in c["points"]] for c in found] == [
        [None, 2.0],
        [None, 2.0, 2.5],
    ]
    assert found[1]["points"][2]["setting"] == (
        "40-way training tasks, ε 187.8, `mean-squared` (4,000 tasks, 1,000 × 4; GAN `gan-207` (weights sha256 "
        "`1d1d1d1d1d1d`))"
    )
    rows = [ln.split(" | ") for ln in table(collect(tmp_path)) if ln.startswith("| training ways")]
    assert len(rows) == 5 and all(r[7] == "4,000 tasks, 1,000 × 4, 1000 val tasks" for r in rows)  # each its budget
    # the same weights under their bundled name are the same generator: a 60-way sweep on them joins that comparison,
    # and a pre-record page (no generator) is the bundled GAN's, whose weights are known
    _sweep(tmp_path / "levers" / "gan-h200-w60-mean-squared", [_row("parameter", "n", 0.5, "shift5", _val(95.6, 97.6))],
           tasks=4000)  # fmt: skip
    data = json.loads((tmp_path / "levers" / "gan-h200-w60-mean-squared" / "sweep.json").read_text())
    data["generator"] = {**longer, "spec": "omniglot-gan-h200", "name": "omniglot-gan-h200"}
    data["sizes"].update(ms, ways=60, epsilon=179.3)
    (tmp_path / "levers" / "gan-h200-w60-mean-squared" / "sweep.json").write_text(json.dumps(data))
    data = json.loads((tmp_path / "levers" / "distance-mean-squared" / "sweep.json").read_text())
    (tmp_path / "levers" / "distance-mean-squared" / "sweep.json").write_text(json.dumps(dict(data, generator=None)))
    found = [c for c in collect(tmp_path) if c["lever"] == "training ways"]
    assert [[p["delta"] and p["delta"]["1"]["pct"] for p in c["points"]] for c in found] == [
        [None, 2.0],
        [None, 2.0, 2.5, 2.6],
    ]


def test_training_augmentation_lever_is_per_learner(tmp_path):
    """A MAML augmentation sweep (levers/maml-augment*) is MAML's lever, against its own shift5 point; the ProtoNets
    augmentation sweep stays ProtoNets'."""
    _sweep(tmp_path / "levers" / "maml-augment", [_row("augment", "n", 0.5, a, _val(one, 97.6)) for a, one in
           (("shift5", 89.5), ("shift5-affine", 90.0), ("shift5-support", 90.5))], tasks=4000, algo="maml")  # fmt: skip
    _sweep(tmp_path / "levers" / "augment", [_row("augment", "n", 1.0, a, _val(one, 97.0)) for a, one in
           (("shift5", 90.0), ("shift5-affine", 91.0))])  # fmt: skip
    found = {c["learner"]: c for c in collect(tmp_path) if c["lever"] == "training augmentation"}
    assert found["maml"]["sources"] == ["levers/maml-augment/sweep.json"]
    assert [(p["setting"], p["delta"] and p["delta"]["1"]["pct"]) for p in found["maml"]["points"]] == [
        ("`shift5` (LASIUM-N σ 0.5)", None),
        ("`shift5-affine` (LASIUM-N σ 0.5)", 0.5),
        ("`shift5-support` (LASIUM-N σ 0.5)", 1.0),
    ]
    assert found["protonets"]["sources"] == ["levers/augment/sweep.json"]
    # the same sweep at another seed is its own comparison, and its settings say the seed
    _sweep(tmp_path / "levers" / "maml-augment-seed1", [_row("augment", "n", 0.5, a, _val(one, 97.6)) for a, one in
           (("shift5", 89.0), ("shift5-affine", 88.0))], tasks=4000, algo="maml")  # fmt: skip
    data = json.loads((tmp_path / "levers" / "maml-augment-seed1" / "sweep.json").read_text())
    data["sizes"]["seed"] = 1
    (tmp_path / "levers" / "maml-augment-seed1" / "sweep.json").write_text(json.dumps(data))
    seeded = [c for c in collect(tmp_path) if c["sources"] == ["levers/maml-augment-seed1/sweep.json"]]
    assert [p["setting"] for p in seeded[0]["points"]] == [
        "`shift5` (LASIUM-N σ 0.5, seed 1)",
        "`shift5-affine` (LASIUM-N σ 0.5, seed 1)",
    ]


def test_an_augmentation_sweep_of_another_recipe_names_it(tmp_path):
    """A ProtoNets augmentation sweep on another generator, 20-way tasks and the mean-squared distance is its own
    comparison, and its settings say that recipe (its labels would otherwise equal the bundled GAN's)."""
    _sweep(tmp_path / "levers" / "augment", [_row("augment", "n", 1.0, a, _val(one, 97.0)) for a, one in
           (("shift5", 90.0), ("shift5-affine", 91.0))])  # fmt: skip
    folder = tmp_path / "levers" / "augment-gan-207-w20"
    _sweep(folder, [_row("augment", "n", 0.5, a, _val(one, 98.7)) for a, one in
           (("shift5", 95.0), ("shift5-affine", 95.4))], tasks=4000)  # fmt: skip
    data = json.loads((folder / "sweep.json").read_text())
    data["sizes"].update(ways=20, epsilon=204.2, distance="mean-squared")
    data["generator"] = {"spec": "gan-207", "kind": "gan", "name": "omniglot-gan", "weights_sha256": "1d" * 32}
    (folder / "sweep.json").write_text(json.dumps(data))
    found = [c for c in collect(tmp_path) if c["lever"] == "training augmentation" and c["learner"] == "protonets"]
    recipe = "GAN `gan-207` (weights sha256 `1d1d1d1d1d1d`), 20-way, `mean-squared`"
    assert sorted(
        (p["setting"], p["delta"] and round(p["delta"]["1"]["pct"], 2)) for c in found for p in c["points"]
    ) == [
        ("`shift5-affine` (LASIUM-N σ 0.5, " + recipe + ")", 0.4),
        ("`shift5-affine` (LASIUM-N σ 1)", 1.0),
        ("`shift5` (LASIUM-N σ 0.5, " + recipe + ")", None),
        ("`shift5` (LASIUM-N σ 1)", None),
    ]


def test_a_best_point_inside_the_ci_of_its_runner_up_is_said_so(tmp_path):
    """The best point's lead over the next setting (not the reference) inside the CI gets a line; a lead outside it,
    or a reference that is the best point, does not."""

    def lines(five_way: float, twenty: float, forty: float) -> list[str]:
        for name, ways, one in (("ways-5", 5, five_way), ("ways-20", 20, twenty), ("ways-40", 40, forty)):
            _sweep(tmp_path / "levers" / name, [_row("parameter", "n", 0.5, "shift5", _val(one, 97.6))], tasks=4000)
            data = json.loads((tmp_path / "levers" / name / "sweep.json").read_text())
            data["sizes"].update(ways=ways)
            (tmp_path / "levers" / name / "sweep.json").write_text(json.dumps(data))
        return [ln for ln in table(collect(tmp_path)) if "inside its CI" in ln]

    (line,) = lines(92.0, 94.0, 94.3)  # +0.30 ± 0.57 over 20-way
    assert line == (
        "- training ways (ProtoNets): 40-way training tasks (4,000 tasks, 1,000 × 4) scores +0.30 ± 0.57 / +0.00 ± "
        "0.28 points (1-shot / 5-shot) against 20-way training tasks (4,000 tasks, 1,000 × 4), a difference inside "
        "its CI: no measurable gain over that setting."
    )
    assert lines(92.0, 94.0, 95.0) == []  # +1.00 ± 0.57: a gain
    assert lines(95.0, 94.0, 94.3) == []  # the reference is the best: "nothing more found" says it all


def test_training_queries_lever_compares_a_queries_sweep_with_the_5_query_sweep_of_its_recipe(tmp_path):
    """levers/queries-15-* against the 5-query sweep of the same generator, ways, distance and budget; two 5-query
    sweeps of one recipe (other levers' references) compare nothing on their own."""
    longer = {"spec": "gan-207", "kind": "gan", "name": "omniglot-gan", "weights_sha256": "1d" * 32}
    w20 = {"distance": "mean-squared", "ways": 20, "epsilon": 204.2}
    for name, generator, one, extra in (
        ("gan-207-w20-mean-squared", longer, 95.0, w20),
        ("queries-15-gan-207-w20", longer, 95.4, {**w20, "queries": 15}),
        ("ways-20-mean-squared", None, 94.0, w20),  # the bundled GAN: no queries sweep of its own
        ("distance-mean-squared", None, 92.0, {"distance": "mean-squared"}),
        ("gan-207-mean-squared", longer, 93.0, {"distance": "mean-squared"}),
    ):
        _sweep(tmp_path / "levers" / name, [_row("parameter", "n", 0.5, "shift5", _val(one, 97.6))], tasks=4000)
        data = json.loads((tmp_path / "levers" / name / "sweep.json").read_text())
        data["generator"] = generator
        data["sizes"].update(extra)
        (tmp_path / "levers" / name / "sweep.json").write_text(json.dumps(data))
    (found,) = [c for c in collect(tmp_path) if c["lever"] == "training queries"]
    assert found["sources"] == [
        "levers/gan-207-w20-mean-squared/sweep.json",
        "levers/queries-15-gan-207-w20/sweep.json",
    ]
    assert [(p["setting"], p["delta"] and p["delta"]["1"]["pct"]) for p in found["points"]] == [
        ("5 queries per class (20-way, 4,000 tasks, 1,000 × 4, `mean-squared`; GAN `gan-207` (weights sha256 "
         "`1d1d1d1d1d1d`))", None),
        ("15 queries per class (20-way, 4,000 tasks, 1,000 × 4, `mean-squared`; GAN `gan-207` (weights sha256 "
         "`1d1d1d1d1d1d`))", 0.4),
    ]  # fmt: skip


def test_a_sigma_sweep_of_another_recipe_says_its_recipe(tmp_path):
    """A σ sweep on another GAN with 20-way tasks and the mean-squared distance names all three in its settings."""
    longer = {"spec": "gan-207", "kind": "gan", "name": "omniglot-gan", "weights_sha256": "1d" * 32}
    rows = [_row("parameter", "n", v, "shift5", _val(one, 98.0)) for v, one in ((0.5, 95.0), (1.0, 94.0))]
    _sweep(tmp_path / "levers" / "gan-207-w20-mean-squared", rows, tasks=4000)
    data = json.loads((tmp_path / "levers" / "gan-207-w20-mean-squared" / "sweep.json").read_text())
    data["generator"] = longer
    data["sizes"].update(ways=20, epsilon=204.2, distance="mean-squared")
    (tmp_path / "levers" / "gan-207-w20-mean-squared" / "sweep.json").write_text(json.dumps(data))
    (found,) = [c for c in collect(tmp_path) if c["lever"] == "σ / α"]
    assert [(p["setting"], p["reference"]) for p in found["points"]] == [
        ("LASIUM-N σ 0.5 (GAN `gan-207` (weights sha256 `1d1d1d1d1d1d`), 20-way, `mean-squared`)", False),
        ("LASIUM-N σ 1 (GAN `gan-207` (weights sha256 `1d1d1d1d1d1d`), 20-way, `mean-squared`)", True),
    ]


def test_inner_steps_lever_compares_maml_sweeps_that_differ_in_them_alone(tmp_path):
    """A MAML sweep trained with 10 inner steps against the 5-step sweep of the same budget and generator
    (levers/maml-parameter-n); a ProtoNets sweep never counts."""
    for name, extra, one, algo in (
        ("maml-parameter-n", {}, 89.5, "maml"),
        ("maml-inner-steps-10", {"inner_steps": 10}, 90.5, "maml"),
        ("distance-squared-euclidean", {}, 92.0, "protonets"),
    ):
        _sweep(tmp_path / "levers" / name, [_row("parameter", "n", 0.5, "shift5", _val(one, 97.6))], tasks=4000,
               algo=algo)  # fmt: skip
        data = json.loads((tmp_path / "levers" / name / "sweep.json").read_text())
        data["sizes"].update(extra)
        (tmp_path / "levers" / name / "sweep.json").write_text(json.dumps(data))
    (found,) = [c for c in collect(tmp_path) if c["lever"] == "inner steps in training"]
    assert found["learner"] == "maml"
    assert [(p["setting"], p["delta"] and p["delta"]["1"]["pct"]) for p in found["points"]] == [
        ("5 inner steps (4,000 tasks, 1,000 × 4)", None),
        ("10 inner steps (4,000 tasks, 1,000 × 4)", 1.0),
    ]


def _lever_sweeps(tmp_path, sweeps) -> None:
    for name, algo, one, extra in sweeps:
        _sweep(tmp_path / "levers" / name, [_row("parameter", "n", 0.5, "shift5", _val(one, 97.6))], tasks=4000,
               algo=algo)  # fmt: skip
        data = json.loads((tmp_path / "levers" / name / "sweep.json").read_text())
        data["sizes"].update(extra)
        if algo == "protonets":
            data["generator"] = {"spec": "gan-207", "kind": "gan", "name": "omniglot-gan", "weights_sha256": "1d" * 32}
        (tmp_path / "levers" / name / "sweep.json").write_text(json.dumps(data))


def test_optimisation_levers_compare_with_their_recipes_sweep(tmp_path):
    """levers/{meta-batch,adam-lr,ema,temperature}-* against the best ProtoNets recipe's σ sweep, levers/maml-{...}-*
    against MAML's; each lever's points differ in its own setting alone (an averaged sweep is no meta-batch point, a
    sweep of another rate no EMA point, a sweep of another rate and temperature no point of either)."""
    w20 = {"distance": "mean-squared", "ways": 20, "epsilon": 204.2}
    _lever_sweeps(tmp_path, (
        ("gan-h200-207-w20-mean-squared", "protonets", 95.0, w20),
        ("meta-batch-8-gan-h200-207-w20-mean-squared", "protonets", 95.3, {**w20, "meta_batch": 8}),
        ("ema-0.99-gan-h200-207-w20-mean-squared", "protonets", 95.5, {**w20, "ema_decay": 0.99}),
        ("adam-lr-2e-3-gan-h200-207-w20-mean-squared", "protonets", 94.8, {**w20, "lr": 0.002}),
        ("ema-0.99-lr-2e-3", "protonets", 96.0, {**w20, "lr": 0.002, "ema_decay": 0.99}),  # two settings: no point
        ("temperature-4-gan-h200-207-w20-mean-squared", "protonets", 95.7, {**w20, "temperature": 4.0}),
        ("temperature-4-lr-2e-3", "protonets", 97.0, {**w20, "temperature": 4.0, "lr": 0.002}),  # two settings
        ("maml-parameter-n", "maml", 89.5, {}),
        ("maml-meta-batch-8", "maml", 90.0, {"meta_batch": 8}),
        ("maml-ema-0.99", "maml", 89.0, {"ema_decay": 0.99}),
    ))  # fmt: skip
    found = {(c["lever"], c["learner"]): c for c in collect(tmp_path)}
    mine = (
        "meta-batch (tasks per step)",
        "moving average of the weights",
        "Adam's learning rate",
        "softmax temperature",
    )
    points = {key: [(p["setting"], p["delta"] and p["delta"]["1"]["pct"]) for p in c["points"]]
              for key, c in found.items() if key[0] in mine}  # fmt: skip
    recipe = "GAN `gan-207` (weights sha256 `1d1d1d1d1d1d`); 20-way, `mean-squared`"
    assert points == {
        ("meta-batch (tasks per step)", "protonets"): [
            (f"meta-batch 4 (4,000 tasks, 1,000 × 4; {recipe})", None),
            (f"meta-batch 8 (4,000 tasks, 1,000 × 8; {recipe})", 0.3),
        ],
        ("meta-batch (tasks per step)", "maml"): [
            ("meta-batch 4 (4,000 tasks, 1,000 × 4)", None),
            ("meta-batch 8 (4,000 tasks, 1,000 × 8)", 0.5),
        ],
        ("moving average of the weights", "protonets"): [
            (f"the stepped weights (4,000 tasks, 1,000 × 4; {recipe})", None),
            (f"moving average, decay 0.99 (4,000 tasks, 1,000 × 4; {recipe})", 0.5),
        ],
        ("Adam's learning rate", "protonets"): [
            (f"`--lr 0.001` (4,000 tasks, 1,000 × 4; {recipe})", None),
            (f"`--lr 0.002` (4,000 tasks, 1,000 × 4; {recipe})", -0.2),
        ],
        ("moving average of the weights", "maml"): [
            ("the stepped weights (4,000 tasks, 1,000 × 4)", None),
            ("moving average, decay 0.99 (4,000 tasks, 1,000 × 4)", -0.5),
        ],
        ("softmax temperature", "protonets"): [
            (f"`--temperature 1` (4,000 tasks, 1,000 × 4; {recipe})", None),
            (f"`--temperature 4` (4,000 tasks, 1,000 × 4; {recipe})", 0.7),
        ],
    }
    for key in points:
        assert math.isclose(
            found[key]["points"][0]["val"]["1"]["accuracy_pct"], 95.0 if key[1] == "protonets" else 89.5
        )


def test_a_maml_rate_at_another_budget_is_compared_with_that_budgets_sweep(tmp_path):
    """levers/maml-adam-lr-*-2000-steps against levers/maml-budget-2000-steps (the default rate at 2,000 steps), the
    1,000-step rate point against MAML's σ sweep; the budget sweep alone is no point of the other levers."""
    _lever_sweeps(tmp_path, (
        ("maml-parameter-n", "maml", 89.5, {}),
        ("maml-budget-2000-steps", "maml", 90.7, {"iterations": 2000}),
        ("maml-adam-lr-2e-3", "maml", 90.3, {"lr": 0.002}),
        ("maml-adam-lr-2e-3-2000-steps", "maml", 91.0, {"lr": 0.002, "iterations": 2000}),
        ("maml-ema-0.99", "maml", 89.0, {"ema_decay": 0.99}),
    ))  # fmt: skip
    found = {(c["lever"], tuple(c["sources"])): c for c in collect(tmp_path) if c["learner"] == "maml"}
    rates = [c for (lever, _), c in found.items() if lever == "Adam's learning rate"]
    points = sorted((p["setting"], p["delta"] and round(p["delta"]["1"]["pct"], 2)) for c in rates for p in c["points"])
    assert points == [
        ("`--lr 0.001` (4,000 tasks, 1,000 × 4)", None),
        ("`--lr 0.001` (4,000 tasks, 2,000 × 4)", None),
        ("`--lr 0.002` (4,000 tasks, 1,000 × 4)", 0.8),
        ("`--lr 0.002` (4,000 tasks, 2,000 × 4)", 0.3),
    ]
    (ema,) = [c for (lever, _), c in found.items() if lever == "moving average of the weights"]
    assert [p["setting"] for p in ema["points"]] == [
        "the stepped weights (4,000 tasks, 1,000 × 4)",
        "moving average, decay 0.99 (4,000 tasks, 1,000 × 4)",
    ]


def test_maml_inner_lr_lever_against_the_authors_rate(tmp_path):
    """levers/maml-inner-lr-* against MAML's σ sweep at the authors' 0.4; a sweep of another inner rate and Adam
    rate is a point of neither lever, and an inner-rate sweep is no point of the budget, Adam-rate or EMA levers."""
    _lever_sweeps(tmp_path, (
        ("maml-parameter-n", "maml", 89.5, {}),
        ("maml-inner-lr-0.2", "maml", 89.0, {"inner_lr": 0.2}),
        ("maml-inner-lr-0.8", "maml", 90.1, {"inner_lr": 0.8}),
        ("maml-inner-lr-0.8-adam-lr-2e-3", "maml", 95.0, {"inner_lr": 0.8, "lr": 0.002}),  # two settings: no point
        ("maml-adam-lr-2e-3", "maml", 90.3, {"lr": 0.002}),
    ))  # fmt: skip
    found = {c["lever"]: c for c in collect(tmp_path) if c["learner"] == "maml"}
    inner = found["inner learning rate in training"]
    assert [(p["setting"], p["delta"] and round(p["delta"]["1"]["pct"], 2)) for p in inner["points"]] == [
        ("`--inner-lr 0.2` (4,000 tasks, 1,000 × 4)", -0.5),
        ("`--inner-lr 0.4` (4,000 tasks, 1,000 × 4)", None),
        ("`--inner-lr 0.8` (4,000 tasks, 1,000 × 4)", 0.6),
    ]
    assert [p["setting"] for p in found["Adam's learning rate"]["points"]] == [
        "`--lr 0.001` (4,000 tasks, 1,000 × 4)",
        "`--lr 0.002` (4,000 tasks, 1,000 × 4)",
    ]
    for lever in found.values():  # the two-settings sweep (95.0) is no lever's point
        assert all(not math.isclose(p["val"]["1"]["accuracy_pct"], 95.0) for p in lever["points"]), lever["lever"]


def test_maml_budget_lever_sets_twice_the_steps_beside_twice_the_meta_batch(tmp_path):
    """On MAML's 4,000 tasks: 2,000 × 4 and 1,000 × 8 (the same task draws and compute) against 1,000 × 4."""
    _lever_sweeps(tmp_path, (
        ("maml-parameter-n", "maml", 89.5, {}),
        ("maml-budget-2000-steps", "maml", 91.5, {"iterations": 2000}),
        ("maml-meta-batch-8", "maml", 90.5, {"meta_batch": 8}),
        ("maml-ema-0.99", "maml", 95.0, {"ema_decay": 0.99}),  # another lever's: not a budget point
    ))  # fmt: skip
    (budget,) = [c for c in collect(tmp_path) if c["lever"].startswith("budget") and c["learner"] == "maml"]
    assert [(p["setting"], p["delta"] and p["delta"]["1"]["pct"]) for p in budget["points"]] == [
        ("4,000 tasks, 1,000 × 4", None),
        ("4,000 tasks, 2,000 × 4", 2.0),
        ("4,000 tasks, 1,000 × 8", 1.0),
    ]


def test_a_best_point_inside_the_ci_of_the_reference_is_said_so(tmp_path):
    """A lever whose best point leads the reference by less than the CI of their difference, at both shots, says
    that it found no measurable gain."""
    w20 = {"distance": "mean-squared", "ways": 20, "epsilon": 204.2}
    _lever_sweeps(tmp_path, (
        ("gan-h200-207-w20-mean-squared", "protonets", 95.0, w20),
        ("ema-0.99-gan-h200-207-w20-mean-squared", "protonets", 95.1, {**w20, "ema_decay": 0.99}),
        ("maml-parameter-n", "maml", 89.5, {}),
        ("maml-meta-batch-8", "maml", 90.7, {"meta_batch": 8}),
    ))  # fmt: skip
    lines = table([c for c in collect(tmp_path) if c["lever"] != "budget (iterations, distinct tasks)"])
    ema = next(ln for ln in lines if ln.startswith("- moving average of the weights (ProtoNets): best tried"))
    assert ema.endswith("worth +0.10 ± 0.57 / +0.00 ± 0.28 points (1-shot / 5-shot) over the reference (the stepped "
                        "weights (4,000 tasks, 1,000 × 4; GAN `gan-207` (weights sha256 `1d1d1d1d1d1d`); 20-way, "
                        "`mean-squared`)), inside the CI: no measurable gain.")  # fmt: skip
    meta = next(ln for ln in lines if ln.startswith("- meta-batch (tasks per step) (MAML): best tried"))
    assert meta.endswith("over the reference (meta-batch 4 (4,000 tasks, 1,000 × 4)).")  # +1.20 ± 0.57: a gain


def test_anchor_distance_lever_compares_each_epsilon_with_the_rows_epsilon_of_its_recipe(tmp_path):
    """levers/epsilon-* against the 20-way recipe's sweep at the wider rows' ε 204.2, levers/maml-epsilon-* against
    MAML's 5-way sweep at lasium-gen's default (no ``epsilon`` in its sizes); widest anchors first; a sweep that also
    changes the rate is no point, and MAML's 2,000-step sweep, alone at its budget, is no comparison."""
    w20 = {"distance": "mean-squared", "ways": 20, "epsilon": 204.2}
    _lever_sweeps(tmp_path, (
        ("gan-h200-207-w20-mean-squared", "protonets", 95.0, w20),
        ("epsilon-0-gan-h200-207-w20-mean-squared", "protonets", 94.2, {**w20, "epsilon": 0.0}),
        ("epsilon-180-gan-h200-207-w20-mean-squared", "protonets", 95.4, {**w20, "epsilon": 180.0}),
        ("epsilon-180-lr-2e-3", "protonets", 97.0, {**w20, "epsilon": 180.0, "lr": 0.002}),  # two settings
        ("maml-parameter-n", "maml", 89.5, {}),
        ("maml-epsilon-0", "maml", 90.1, {"epsilon": 0.0}),
        ("maml-budget-2000-steps", "maml", 90.7, {"iterations": 2000}),
    ))  # fmt: skip
    found = [c for c in collect(tmp_path) if c["lever"] == "anchor distance ε"]
    points = {c["learner"]: [(p["setting"], p["delta"] and p["delta"]["1"]["pct"]) for p in c["points"]]
              for c in found}  # fmt: skip
    recipe = "4,000 tasks, 1,000 × 4; GAN `gan-207` (weights sha256 `1d1d1d1d1d1d`); 20-way, `mean-squared`"
    assert points == {
        "protonets": [
            (f"ε 204.2 ({recipe})", None),
            (f"ε 180 ({recipe})", 0.4),
            (f"ε 0 (no rejection: anchors drawn independently) ({recipe})", -0.8),
        ],
        "maml": [
            ("lasium-gen's default ε (246.09375·D/128) (4,000 tasks, 1,000 × 4)", None),
            ("ε 0 (no rejection: anchors drawn independently) (4,000 tasks, 1,000 × 4)", 0.6),
        ],
    }
    lines = table(found)
    assert any(ln.startswith("- anchor distance ε (ProtoNets): best tried ε 180") for ln in lines)
    assert not any(ln.startswith("- Not tried yet") and "anchor distance" in ln for ln in lines)


def test_training_queries_lever_of_maml_compares_with_mamls_5_query_sweep(tmp_path):
    """levers/maml-queries-* against levers/maml-parameter-n at its budget; a ProtoNets queries sweep is not MAML's."""
    _lever_sweeps(tmp_path, (
        ("maml-parameter-n", "maml", 89.5, {}),
        ("maml-queries-15", "maml", 90.4, {"queries": 15}),
        ("maml-budget-2000-steps", "maml", 90.7, {"iterations": 2000}),
        ("gan-h200-207-w20-mean-squared", "protonets", 95.0, {"ways": 20}),
        ("queries-15-gan-h200-207-w20-mean-squared", "protonets", 94.9, {"ways": 20, "queries": 15}),
    ))  # fmt: skip
    found = {c["learner"]: c for c in collect(tmp_path) if c["lever"] == "training queries"}
    assert not [c for c in collect(tmp_path) if c["lever"] == "training shots"]  # no shots sweep: no comparison
    assert [(p["setting"], p["delta"] and p["delta"]["1"]["pct"]) for p in found["maml"]["points"]] == [
        ("5 queries per class (4,000 tasks, 1,000 × 4)", None),
        ("15 queries per class (4,000 tasks, 1,000 × 4)", 0.9),
    ]
    assert [p["delta"] and p["delta"]["1"]["pct"] for p in found["protonets"]["points"]] == [None, -0.1]


def test_a_mixture_sweep_of_another_recipe_names_it_and_its_sources_generators(tmp_path):
    """A mixture sweep on another GAN with 20-way tasks says so beside each mixture; a source on its own generator
    keeps its name (n@omniglot-gan)."""
    mixes = [
        {"family": "mixture", "strategy": "mix", "value": None, "augment": "shift5", "mix": mix, "key": key,
         "status": "ok", "val": _val(one, 98.6)}
        for mix, key, one in (("n:1", "mix-n1-shift5", 95.0), ("n:0.5+n@omniglot-gan:0.5", "mix-gans", 95.4))
    ]  # fmt: skip
    _sweep(tmp_path / "levers" / "mix-gans", mixes, tasks=4000)
    data = json.loads((tmp_path / "levers" / "mix-gans" / "sweep.json").read_text())
    data["sizes"].update(ways=20, epsilon=204.2, distance="mean-squared")
    data["generator"] = {"spec": "gan-207", "kind": "gan", "name": "omniglot-gan", "weights_sha256": "1d" * 32}
    (tmp_path / "levers" / "mix-gans" / "sweep.json").write_text(json.dumps(data))
    (mixture,) = [c for c in collect(tmp_path) if c["lever"] == "task mixture"]
    recipe = "GAN `gan-207` (weights sha256 `1d1d1d1d1d1d`), 20-way, `mean-squared`"
    assert [(p["setting"], p["delta"] and p["delta"]["1"]["pct"]) for p in mixture["points"]] == [
        (f"n × 1 (`shift5`, {recipe})", None),
        (f"n × 0.5 + n@omniglot-gan × 0.5 (`shift5`, {recipe})", 0.4),
    ]


def test_training_shots_lever_of_maml_compares_with_mamls_1_shot_sweep(tmp_path):
    """levers/maml-shots-* against levers/maml-parameter-n (1-shot tasks) at its budget."""
    _lever_sweeps(tmp_path, (
        ("maml-parameter-n", "maml", 89.5, {}),
        ("maml-shots-5", "maml", 89.0, {"shots": 5}),
        ("maml-queries-15", "maml", 90.4, {"queries": 15}),  # another lever's: not a shots point
    ))  # fmt: skip
    (shots,) = [c for c in collect(tmp_path) if c["lever"] == "training shots"]
    assert shots["learner"] == "maml"
    assert [(p["setting"], p["delta"] and p["delta"]["1"]["pct"]) for p in shots["points"]] == [
        ("1-shot 5-way training tasks (4,000 tasks, 1,000 × 4)", None),
        ("5-shot 5-way training tasks (4,000 tasks, 1,000 × 4)", -0.5),
    ]


def test_a_delta_against_a_reference_measured_elsewhere_is_marked(tmp_path):
    """A point whose page names another machine, or whose row trained or scored in other numerics, than its
    reference's gets ‡ on its Δ and the table says why; points measured like their reference get none."""
    _lever_sweeps(tmp_path, (
        ("maml-parameter-n", "maml", 89.5, {}),
        ("maml-inner-lr-0.2", "maml", 89.0, {"inner_lr": 0.2}),
        ("maml-inner-lr-0.6", "maml", 89.2, {"inner_lr": 0.6}),
        ("maml-inner-lr-0.8", "maml", 89.1, {"inner_lr": 0.8}),
    ))  # fmt: skip
    for name, change in (
        ("maml-inner-lr-0.6", {"device": "x86_64 CPU (AMD EPYC), 2 cores"}),
        ("maml-inner-lr-0.8", {"numerics": {"train": "bf16", "score": "bf16"}}),
    ):
        path = tmp_path / "levers" / name / "sweep.json"
        data = json.loads(path.read_text())
        if "device" in change:
            data["device"] = change["device"]
        else:
            data["rows"][0]["numerics"] = change["numerics"]
        path.write_text(json.dumps(data))
    comparisons = collect(tmp_path)
    inner = next(c for c in comparisons if c["lever"] == "inner learning rate in training")
    assert [p["elsewhere"] for p in inner["points"]] == [False, False, True, True]
    lines = table(comparisons)
    rows = [ln for ln in lines if ln.startswith("| inner learning rate")]
    assert [ln.count("‡") for ln in rows] == [0, 0, 2, 2]
    assert "| -0.50 ± 0.57 | +0.00 ± 0.28 |" in rows[0] and "| -0.30 ± 0.57 ‡ | +0.00 ± 0.28 ‡ |" in rows[2]
    assert any(ln.startswith("‡ The point and its reference were not measured on one recorded machine") for ln in lines)
    plain = table([c for c in comparisons if c is not inner])
    assert not any("‡" in ln for ln in plain)


def test_maml_budget_lever_compares_a_cosine_budget_with_cosine_runs_and_repeats_on_their_own(tmp_path):
    """A cosine run's budget is compared with cosine runs only (its rate depends on the run's length), and the points
    repeated on one CPU form their own comparisons, one per seed, whatever the other machine's pages scored."""
    _lever_sweeps(tmp_path, (
        ("maml-parameter-n", "maml", 89.5, {}),
        ("maml-budget-2000-steps", "maml", 90.5, {"iterations": 2000}),
        ("maml-budget-8000-steps-cosine", "maml", 94.0, {"tasks": 32000, "iterations": 8000, "lr_schedule": "cosine"}),
        ("maml-budget-16000-steps-cosine", "maml", 94.5, {"tasks": 64000, "iterations": 16000,
                                                          "lr_schedule": "cosine"}),
        ("repeat-maml-parameter-n", "maml", 88.75, {}),
        ("repeat-maml-parameter-n-seed1", "maml", 89.0, {"seed": 1}),
        ("repeat-maml-budget-2000-steps", "maml", 90.0, {"iterations": 2000}),
        ("repeat-maml-budget-2000-steps-seed1", "maml", 90.5, {"iterations": 2000, "seed": 1}),
        ("repeat-maml-parameter-n-fp32", "maml", 88.5, {"precision": "fp32"}),  # the precision check: not a budget
    ))  # fmt: skip
    found = [c for c in collect(tmp_path) if c["lever"].startswith("budget") and c["learner"] == "maml"]
    deltas = {
        (c["lever"], p["setting"]): p["delta"] and round(p["delta"]["1"]["pct"], 2) for c in found for p in c["points"]
    }
    assert deltas == {
        ("budget (iterations, distinct tasks)", "4,000 tasks, 1,000 × 4"): None,
        ("budget (iterations, distinct tasks)", "4,000 tasks, 2,000 × 4"): 1.0,
        ("budget (iterations, distinct tasks)", "32,000 tasks, 8,000 × 4, `cosine` rate"): None,
        ("budget (iterations, distinct tasks)", "64,000 tasks, 16,000 × 4, `cosine` rate"): 0.5,
        ("budget (iterations, distinct tasks)", "4,000 tasks, 1,000 × 4, repeated on one CPU"): None,
        ("budget (iterations, distinct tasks)", "4,000 tasks, 2,000 × 4, repeated on one CPU"): 1.25,
        ("budget (iterations, distinct tasks)", "4,000 tasks, 1,000 × 4, seed 1, repeated on one CPU"): None,
        ("budget (iterations, distinct tasks)", "4,000 tasks, 2,000 × 4, seed 1, repeated on one CPU"): 1.5,
    }
