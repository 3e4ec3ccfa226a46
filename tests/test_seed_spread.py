"""The seed-spread table of the Omniglot page (lasium.repro.seed_spread): which validation sweeps it pairs as the same
point at two seeds, the differences with their CIs, and how the page shows them."""

from __future__ import annotations

import json
import math

from lasium.repro.omniglot_page import render_markdown, write_page
from lasium.repro.seed_spread import collect, table


def _val(one: float, five: float, ci1: float = 0.4, ci5: float = 0.2) -> dict:
    return {
        "1": dict(accuracy_pct=one, ci95_pct=ci1, tasks=1000),
        "5": dict(accuracy_pct=five, ci95_pct=ci5, tasks=1000),
    }


def _commands(work: str, augment: str, seed: int, iterations: int = 1000) -> dict:
    shards, run = f"{work}/shards/n-sigma0.5", f"{work}/runs/n-sigma0.5-{augment}"
    return {
        "gen": f"lasium-gen --strategy n --sigma 0.5 --n-tasks 4000 --seed {seed} --out {shards} --quiet",
        "train": f"lasium-train --shards {shards} --augment {augment} --iterations {iterations} --seed {seed} "
        f"--out {run} --quiet",
        "eval": f"lasium-eval --checkpoint {run} --split val --tasks 1000 --seed 0 --out {work}/evals/{augment}.json",
    }


def _sweep(folder, name, points, *, seed=0, algo="maml", device="x86_64 CPU (AMD EPYC), 2 cores", generator=None,
           work=None, **sizes):  # fmt: skip
    """``points``: (augment, val, extra row fields) of LASIUM-N σ 0.5 points; each row records its commands, run in
    ``work`` (the page's name by default)."""
    path = folder / "levers" / name
    path.mkdir(parents=True, exist_ok=True)
    work = work or f"lever-{name}"
    rows = [
        {"family": "parameter", "strategy": "n", "parameter": "sigma", "value": 0.5, "augment": augment,
         "key": f"n-sigma0.5-{augment}", "status": "ok", "val": val,
         "commands": _commands(work, augment, seed, sizes.get("iterations", 1000)), **extra}
        for augment, val, extra in points
    ]  # fmt: skip
    base = dict(tasks=4000, iterations=1000, meta_batch=4, val_tasks=1000, seed=seed, threads=1, algo=algo)
    results = {"format": "lasium-sweep-omniglot", "device": device, "sizes": {**base, **sizes}, "rows": rows,
               "options": {"work": work}, **({"generator": generator} if generator else {})}  # fmt: skip
    (path / "sweep.json").write_text(json.dumps(results))


def test_a_seed_repeat_is_paired_with_its_twin_point_by_point(tmp_path):
    _sweep(tmp_path, "maml-augment", [("shift5", _val(88.8, 97.6, 0.5, 0.15), {}),
                                      ("shift5-affine", _val(87.7, 97.4, 0.5, 0.16), {})])  # fmt: skip
    _sweep(tmp_path, "maml-augment-seed1", [("shift5", _val(88.9, 97.6, 0.5, 0.14), {}),
                                            ("shift5-affine", _val(88.7, 97.6, 0.5, 0.14), {})], seed=1)  # fmt: skip
    pairs = collect(tmp_path)["pairs"]
    assert [p["setting"] for p in pairs] == [
        "LASIUM-N σ 0.5, `shift5` (4,000 tasks, 1,000 × 4)",
        "LASIUM-N σ 0.5, `shift5-affine` (4,000 tasks, 1,000 × 4)",
    ]
    assert all(p["learner"] == "maml" and p["seeds"] == [0, 1] and not p["elsewhere"] for p in pairs)
    affine = pairs[1]["delta"]
    assert affine["1"] == {"pct": 1.0, "ci95_pct": round(math.hypot(0.5, 0.5), 2)}
    assert affine["5"] == {"pct": 0.2, "ci95_pct": round(math.hypot(0.16, 0.14), 2)}
    lines = table(collect(tmp_path))
    assert "| MAML | LASIUM-N σ 0.5, `shift5-affine` (4,000 tasks, 1,000 × 4) | 0 → 1 |" in lines[3]
    assert "| 87.70 ± 0.50 → 88.70 ± 0.50 | 97.40 ± 0.16 → 97.60 ± 0.14 | +1.00 ± 0.71 | +0.20 ± 0.21 |" in lines[3]
    assert lines[-1] == (
        "- MAML: 2 points repeated at another seed moved by at most 1.00 / 0.20 points (1-shot / 5-shot); 3 of 4 "
        "differences inside their (unpaired) CI."
    )
    assert not any("‡" in ln for ln in lines)


def test_only_sweeps_that_differ_in_their_seed_alone_are_paired(tmp_path):
    one = [("shift5", _val(90.0, 97.0), {})]
    h200 = {"kind": "gan", "spec": "omniglot-gan-h200", "weights_sha256": "1d82e4d0c829aa"}
    _sweep(tmp_path, "budget", one)
    _sweep(tmp_path, "budget-seed1", one, seed=1, iterations=2000)  # another budget too
    _sweep(tmp_path, "orphan-seed1", one, seed=1)  # no levers/orphan
    _sweep(tmp_path, "cosine", one, lr_schedule="cosine")
    _sweep(tmp_path, "cosine-seed2", one, seed=2)  # its twin has a cosine rate, it has not
    _sweep(tmp_path, "episodes", [("shift5", _val(90.0, 97.0), {"episode_digest": "a"})])
    _sweep(tmp_path, "episodes-seed1", [("shift5", _val(90.0, 97.0), {"episode_digest": "b"})], seed=1)
    _sweep(tmp_path, "gan", one, generator=h200)
    _sweep(tmp_path, "gan-seed1", one, seed=1, generator={**h200, "weights_sha256": "ffff"})  # other weights
    _sweep(tmp_path, "folder", one)
    _sweep(tmp_path, "folder-seed2", one, seed=1)  # its page says seed 1, its folder seed 2
    _sweep(tmp_path, "unknown", one, algo="reptile")
    _sweep(tmp_path, "unknown-seed1", one, seed=1, algo="reptile")  # no learner of the table
    _sweep(tmp_path, "failed", one)
    _sweep(tmp_path, "failed-seed1", [("shift5", _val(90.0, 97.0), {"status": "failed"})], seed=1)
    _sweep(tmp_path, "named-seed1-extra", one, seed=1)  # the suffix must end the name: not a repeat
    _sweep(tmp_path, "same", one, seed=1)
    _sweep(tmp_path, "same-seed1", one, seed=1)  # its twin ran at seed 1 too
    spread = collect(tmp_path)
    assert spread["pairs"] == []
    assert spread["unpaired"] == [
        f"levers/{name}-seed{k}/sweep.json"
        for name, k in (("budget", 1), ("cosine", 2), ("episodes", 1), ("failed", 1), ("folder", 2), ("gan", 1),
                        ("orphan", 1), ("same", 1), ("unknown", 1))
    ]  # fmt: skip
    assert table(spread)[-1].startswith("- Not paired (no `levers/<name>` page that differs from it in the seed alone)")
    assert collect(tmp_path / "empty") == {} and table({}) == []


def test_a_point_whose_commands_differ_in_more_than_the_seed_is_not_paired(tmp_path):
    one = [("shift5", _val(90.0, 97.0), {})]
    _sweep(tmp_path, "maml", one)
    _sweep(tmp_path, "maml-seed1", one, seed=1)
    assert len(collect(tmp_path)["pairs"]) == 1  # other work folders and seeds: the same point
    path = tmp_path / "levers" / "maml-seed1" / "sweep.json"
    page = json.loads(path.read_text())
    page["rows"][0]["commands"]["train"] += " --lr 0.002"
    path.write_text(json.dumps(page))
    assert collect(tmp_path) == {"pairs": [], "unpaired": ["levers/maml-seed1/sweep.json"]}
    page["rows"][0]["commands"]["train"] = page["rows"][0]["commands"]["train"].removesuffix(" --lr 0.002")
    page["rows"][0]["commands"]["eval"] = page["rows"][0]["commands"]["eval"].replace("--seed 0", "--seed 1")
    path.write_text(json.dumps(page))
    assert collect(tmp_path)["pairs"] == []  # scored on other episodes
    for row in page["rows"]:
        del row["commands"]  # a page from before the commands were recorded: sizes and generator decide
    path.write_text(json.dumps(page))
    assert len(collect(tmp_path)["pairs"]) == 1


def test_one_measurement_on_two_pages_counts_once_and_an_unnamed_machine_is_marked(tmp_path):
    """Two pages that name no CPU model may be two machines: their Δ gets ‡ though their device records match."""
    shift5 = [("shift5", _val(88.8, 97.6), {})]
    again = [("shift5", _val(88.9, 97.5), {})]
    _sweep(tmp_path, "maml-augment", shift5, work="lever-maml-repeat")  # reused the repeat's runs
    _sweep(tmp_path, "maml-augment-seed1", again, seed=1, work="lever-maml-repeat-seed1")
    _sweep(tmp_path, "repeat-maml", shift5, work="lever-maml-repeat", device="x86_64 CPU, 2 cores")
    _sweep(tmp_path, "repeat-maml-seed1", again, seed=1, work="lever-maml-repeat-seed1", device="x86_64 CPU, 2 cores")
    h200 = {"kind": "gan", "spec": "omniglot-gan-h200", "weights_sha256": "1d82e4d0c829aa"}
    _sweep(tmp_path, "w20", [("shift5", _val(94.9, 98.6), {})], algo="protonets", device="x86_64 CPU, 2 cores",
           ways=20, generator=h200)  # fmt: skip
    _sweep(tmp_path, "w20-seed1", [("shift5", {"1": _val(95.1, 0)["1"]}, {})], seed=1, algo="protonets", ways=20,
           generator={**h200, "spec": "gan-h200-207"}, device="x86_64 CPU, 2 cores")  # fmt: skip
    spread = collect(tmp_path)
    pairs = spread["pairs"]
    assert [(p["learner"], p["elsewhere"]) for p in pairs] == [("maml", False), ("protonets", True)]
    assert pairs[0]["sources"] == [
        "levers/maml-augment-seed1/sweep.json", "levers/maml-augment/sweep.json",
        "levers/repeat-maml-seed1/sweep.json", "levers/repeat-maml/sweep.json",
    ]  # fmt: skip
    lines = table(spread)
    assert "| LASIUM-N σ 0.5, `shift5` (4,000 tasks, 1,000 × 4; GAN `omniglot-gan-h200` (weights sha256 " in lines[3]
    assert "20-way) | 0 → 1 | 94.90 ± 0.40 → 95.10 ± 0.40 | – | +0.20 ± 0.57 ‡ | – |" in lines[3]
    assert any(ln.startswith("‡ The two seeds' points were not measured on one recorded machine") for ln in lines)
    assert lines[-2:] == [
        "- ProtoNets: 1 point repeated at another seed moved by at most 0.20 / – points (1-shot / 5-shot); 1 of 1 "
        "differences inside their (unpaired) CI.",
        "- MAML: 1 point repeated at another seed moved by at most 0.10 / 0.10 points (1-shot / 5-shot); 2 of 2 "
        "differences inside their (unpaired) CI.",
    ]


def test_a_difference_exactly_at_its_ci_counts_as_inside(tmp_path):
    _sweep(tmp_path, "edge", [("shift5", _val(90.0, 97.0, 0.3, 0.3), {})])
    _sweep(tmp_path, "edge-seed1", [("shift5", _val(90.5, 97.6, 0.4, 0.4), {})], seed=1)
    (pair,) = collect(tmp_path)["pairs"]
    assert pair["delta"]["1"] == {"pct": 0.5, "ci95_pct": 0.5} and pair["delta"]["5"]["pct"] == 0.6
    assert table({"pairs": [pair]})[-1].endswith("1 of 2 differences inside their (unpaired) CI.")


def test_the_omniglot_page_shows_the_seed_spread_and_keeps_it_in_its_json(tmp_path):
    _sweep(tmp_path, "maml-parameter-n", [("shift5", _val(89.5, 97.6), {})])
    _sweep(tmp_path, "maml-parameter-n-seed1", [("shift5", _val(88.9, 97.6), {})], seed=1)
    results = {"format": "lasium-repro-omniglot", "rows": [], "stages": []}
    written, _ = write_page(results, tmp_path)
    assert written["seed_spread"]["pairs"][0]["delta"]["1"]["pct"] == -0.6
    md = (tmp_path / "omniglot.md").read_text()
    assert "### The same point at another seed" in md and "| -0.60 ± 0.57 | +0.00 ± 0.28 |" in md
    stored = json.loads((tmp_path / "omniglot.json").read_text())
    assert "### The same point at another seed" in render_markdown(stored)  # redrawn from its JSON alone
    assert "another seed" not in render_markdown(results)
