"""Rows of LASIUM with another GAN (lasium-repro omniglot --generator-results): taken from the page a driver with
another --generator wrote, renamed after that GAN, shown in their own section beside the row of the same recipe, and
counted toward the unsupervised targets only."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from repro_helpers import options_for, scored_row

from lasium.errors import ConfigError
from lasium.generate import bundled_folder
from lasium.repro.cli import main as repro_main
from lasium.repro.omniglot import page_only_omniglot
from lasium.repro.omniglot_page import render_markdown
from lasium.repro.other_gan import OTHER_GAN, generator_name, rows_from_pages
from lasium.safe_io import file_sha256

H200 = file_sha256(bundled_folder("omniglot-gan-h200") / "model.safetensors")
BUNDLED = file_sha256(bundled_folder("omniglot-gan") / "model.safetensors")


def _page(path, rows, preset="cpu"):
    stages = [{"name": f"train-{r['key']}", "row": r["key"], "status": "ok", "seconds": 10.0, "command": "x"}
              for r in rows]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"preset": preset, "rows": rows, "stages": stages}))
    return path


def _h200_row(key="protonets-n", one=94.6, five=98.6, **extra):
    generator = {"spec": "runs/gan-h200-207", "kind": "gan", "name": "omniglot-gan", "weights_sha256": H200}
    return scored_row(key, "LASIUM-N-GAN + ProtoNets (ours)", "protonets", "lasium", one, five, generator=generator,
                      **extra)  # fmt: skip


def test_a_gan_is_named_by_the_bundled_model_its_weights_are_else_by_its_spec():
    assert generator_name({"spec": "runs/gan-h200-207", "weights_sha256": H200}) == "omniglot-gan-h200"
    assert generator_name({"spec": "runs/gan-long", "weights_sha256": "ab" * 32}) == "runs/gan-long"


def test_rows_of_another_gan_are_renamed_after_it_with_their_stages(tmp_path):
    failed = {**_h200_row("protonets-oc"), "status": "failed"}
    umtra = scored_row("protonets-umtra", "UMTRA + ProtoNets (ours)", "protonets", "other", 90.0, 96.0)
    page = _page(tmp_path / "h200" / "omniglot.json", [_h200_row(), failed, umtra])
    rows, stages = rows_from_pages((page,), "cpu", BUNDLED, tmp_path / "results")
    assert [(r["key"], r["label"], r["family"], r["same_recipe"]) for r in rows] == [
        ("protonets-n@omniglot-gan-h200", "LASIUM-N-GAN + ProtoNets, GAN `omniglot-gan-h200` (ours)", OTHER_GAN,
         "protonets-n"),
    ]  # fmt: skip
    assert rows[0]["page"] == "../h200/omniglot.json" and rows[0]["eval"]["1"]["accuracy_pct"] == 94.6
    assert [(s["name"], s["row"]) for s in stages] == [("train-protonets-n", "protonets-n@omniglot-gan-h200")]


@pytest.mark.parametrize(
    ("rows", "preset", "message"),
    [
        ([], "quick", "written at --sizes quick, not cpu"),
        ([{**_h200_row(), "generator": {"kind": "gan", "weights_sha256": BUNDLED}}], "cpu", "--reuse-results"),
    ],
)
def test_a_page_of_other_sizes_or_of_the_runs_own_gan_is_refused(tmp_path, rows, preset, message):
    page = _page(tmp_path / "p" / "omniglot.json", rows, preset)
    with pytest.raises(ConfigError, match=re.escape(message)):
        rows_from_pages((page,), "cpu", BUNDLED, tmp_path)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match="not a readable results page"):
        rows_from_pages((tmp_path / "bad.json",), "cpu", BUNDLED, tmp_path)


def test_the_page_shows_them_beside_the_same_recipe_and_counts_them_toward_the_unsupervised_targets_only(tmp_path):
    from lasium.repro.sizes import SIZES

    ours = scored_row("protonets-n", "LASIUM-N-GAN + ProtoNets (ours)", "protonets", "lasium", 94.0, 98.7)
    page = _page(tmp_path / "h200" / "omniglot.json", [_h200_row(one=96.5, five=99.2)])
    theirs, _ = rows_from_pages((page,), "cpu", BUNDLED, tmp_path)
    md = render_markdown({"rows": [ours, *theirs], "protocol": {"tasks": 1000}, "sizes": dict(SIZES["cpu"].__dict__)})
    sections = dict(re.findall(r"## ([^\n]+)\n(.*?)(?=\n## |\Z)", md, flags=re.S))
    assert "omniglot-gan-h200" not in sections["Omniglot 5-way accuracy (%)"]
    other = sections["LASIUM with another GAN"]
    assert "| 96.50 ± 0.50 | 99.20 ± 0.30 | 94.00 / 98.70 | +2.50 / +0.50 |" in other
    assert "[h200/omniglot.json](h200/omniglot.md)" in other  # relative to the page that shows it
    targets = sections["Targets (LASIUM paper, Omniglot 5-way)"]
    unsupervised = [ln for ln in targets.splitlines() if ln.startswith("- Unsupervised with ProtoNets")]
    assert all("GAN `omniglot-gan-h200`" in ln and "**met**" in ln for ln in unsupervised)
    project = [ln for ln in targets.splitlines() if ln.startswith("- LASIUM with ProtoNets")]
    assert project and not any("omniglot-gan-h200" in ln for ln in project)


def test_page_only_takes_them_and_the_option_round_trips(tmp_path):
    page = _page(tmp_path / "h200" / "omniglot.json", [_h200_row()])
    options = options_for(tmp_path, sizes="cpu", only=("protonets-n",), generator_results=(page,), device="auto",
                          threads=None)  # fmt: skip
    written = page_only_omniglot(options)
    assert {r["key"]: r["status"] for r in written["rows"]} == {
        "protonets-n": "not run",
        "protonets-n@omniglot-gan-h200": "ok",
    }
    assert "--generator-results" in written["driver_command"]
    again = page_only_omniglot(options_for(tmp_path, sizes="cpu", only=("protonets-n",), device="auto", threads=None))
    assert [r["key"] for r in again["rows"]] == ["protonets-n"]  # shown only while their page is given
    assert type(options).from_json(options.to_json()) == options
    missing = CliRunner().invoke(repro_main, ["omniglot", "--page-only", "--generator-results", "nope.json"])
    assert missing.exit_code == 2 and "nope.json" in missing.output
