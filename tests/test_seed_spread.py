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


def _sweep(folder, name, points, *, seed=0, algo="maml", device="x86_64 CPU (AMD EPYC), 2 cores", **sizes):
    """``points``: (augment, val, extra row fields) of LASIUM-N σ 0.5 points."""
    path = folder / "levers" / name
    path.mkdir(parents=True, exist_ok=True)
    rows = [
        {"family": "parameter", "strategy": "n", "parameter": "sigma", "value": 0.5, "augment": augment,
         "key": f"n-sigma0.5-{augment}", "status": "ok", "val": val, **extra}
        for augment, val, extra in points
    ]  # fmt: skip
    base = dict(tasks=4000, iterations=1000, meta_batch=4, val_tasks=1000, seed=seed, threads=1, algo=algo)
    results = {"format": "lasium-sweep-omniglot", "device": device, "sizes": {**base, **sizes}, "rows": rows}
    (path / "sweep.json").write_text(json.dumps(results))


def test_a_seed_repeat_is_paired_with_its_twin_point_by_point(tmp_path):
    _sweep(tmp_path, "maml-augment", [("shift5", _val(88.8, 97.6, 0.5, 0.15), {}),
                                      ("shift5-affine", _val(87.7, 97.4, 0.5, 0.16), {})])  # fmt: skip
    _sweep(tmp_path, "maml-augment-seed1", [("shift5", _val(88.9, 97.6, 0.5, 0.14), {}),
                                            ("shift5-affine", _val(88.7, 97.6, 0.5, 0.14), {})], seed=1)  # fmt: skip
    pairs = collect(tmp_path)
    assert [p["setting"] for p in pairs] == [
        "LASIUM-N σ 0.5, `shift5` (4,000 tasks, 1,000 × 4)",
        "LASIUM-N σ 0.5, `shift5-affine` (4,000 tasks, 1,000 × 4)",
    ]
    assert all(p["learner"] == "maml" and p["seeds"] == [0, 1] and not p["elsewhere"] for p in pairs)
    affine = pairs[1]["delta"]
    assert affine["1"] == {"pct": 1.0, "ci95_pct": round(math.hypot(0.5, 0.5), 2)}
    assert affine["5"] == {"pct": 0.2, "ci95_pct": round(math.hypot(0.16, 0.14), 2)}
    lines = table(pairs)
    assert "| MAML | LASIUM-N σ 0.5, `shift5-affine` (4,000 tasks, 1,000 × 4) | 0 → 1 |" in lines[3]
    assert "| 87.70 ± 0.50 → 88.70 ± 0.50 | 97.40 ± 0.16 → 97.60 ± 0.14 | +1.00 ± 0.71 | +0.20 ± 0.21 |" in lines[3]
    assert lines[-1] == (
        "- MAML: 2 points repeated at another seed moved by at most 1.00 / 0.20 points (1-shot / 5-shot); 3 of 4 "
        "differences inside their CI."
    )
    assert not any("‡" in ln for ln in lines)


def test_only_sweeps_that_differ_in_their_seed_alone_are_paired(tmp_path):
    one = [("shift5", _val(90.0, 97.0), {})]
    _sweep(tmp_path, "budget", one)
    _sweep(tmp_path, "budget-seed1", one, seed=1, iterations=2000)  # another budget too: not a seed repeat
    _sweep(tmp_path, "orphan-seed1", one, seed=1)  # no levers/orphan
    _sweep(tmp_path, "cosine", one, lr_schedule="cosine")
    _sweep(tmp_path, "cosine-seed2", one, seed=2)  # its twin has a cosine rate, it has not
    _sweep(tmp_path, "episodes", [("shift5", _val(90.0, 97.0), {"episode_digest": "a"})])
    _sweep(tmp_path, "episodes-seed1", [("shift5", _val(90.0, 97.0), {"episode_digest": "b"})], seed=1)
    _sweep(tmp_path, "named-seed1-extra", one, seed=1)  # the suffix must end the name
    assert collect(tmp_path) == [] and table([]) == []
    _sweep(tmp_path, "cosine-seed3", one, seed=3, lr_schedule="cosine")
    (pair,) = collect(tmp_path)
    assert pair["seeds"] == [0, 3] and pair["setting"].endswith("(4,000 tasks, 1,000 × 4, `cosine` rate)")


def test_one_measurement_on_two_pages_counts_once_and_another_machine_is_marked(tmp_path):
    shift5 = ("shift5", _val(88.8, 97.6), {})
    for name in ("maml-augment", "repeat-maml"):  # a sweep that reused the other's runs
        _sweep(tmp_path, name, [shift5])
        _sweep(tmp_path, f"{name}-seed1", [("shift5", _val(88.9, 97.5), {})], seed=1)
    _sweep(tmp_path, "w20", [("shift5", _val(94.9, 98.6), {})], algo="protonets", device="x86_64 CPU, 2 cores",
           ways=20)  # fmt: skip
    _sweep(tmp_path, "w20-seed1", [("shift5", _val(95.1, 98.6), {})], seed=1, algo="protonets", ways=20)
    pairs = collect(tmp_path)
    assert [(p["learner"], p["elsewhere"]) for p in pairs] == [("maml", False), ("protonets", True)]
    lines = table(pairs)
    assert "+0.20 ± 0.57 ‡ | +0.00 ± 0.28 ‡ |" in lines[3] and "(4,000 tasks, 1,000 × 4; 20-way)" in lines[3]
    assert any(ln.startswith("‡ The two seeds' pages do not record one machine") for ln in lines)
    assert lines[-2:] == [
        "- ProtoNets: 1 point repeated at another seed moved by at most 0.20 / 0.00 points (1-shot / 5-shot); 2 of 2 "
        "differences inside their CI.",
        "- MAML: 1 point repeated at another seed moved by at most 0.10 / 0.10 points (1-shot / 5-shot); 2 of 2 "
        "differences inside their CI.",
    ]


def test_the_omniglot_page_shows_the_seed_spread_and_keeps_it_in_its_json(tmp_path):
    _sweep(tmp_path, "maml-parameter-n", [("shift5", _val(89.5, 97.6), {})])
    _sweep(tmp_path, "maml-parameter-n-seed1", [("shift5", _val(88.9, 97.6), {})], seed=1)
    results = {"format": "lasium-repro-omniglot", "rows": [], "stages": []}
    written, _ = write_page(results, tmp_path)
    assert written["seed_spread"][0]["delta"]["1"]["pct"] == -0.6
    md = (tmp_path / "omniglot.md").read_text()
    assert "### The same point at another seed" in md and "| -0.60 ± 0.57 | +0.00 ± 0.28 |" in md
    stored = json.loads((tmp_path / "omniglot.json").read_text())
    assert "### The same point at another seed" in render_markdown(stored)  # redrawn from its JSON alone
    assert "another seed" not in render_markdown(results)
