"""The LASIUM-VAE rows of the Omniglot reproduction and the generator every row names: which rows and stages run
(``--only vae``, ``--vae SPEC``), what a resumed run reuses (nothing made by other generator weights), what
``--plan`` says of each stage, and the page's VAE section beside the paper's cells."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from repro_helpers import FakeStages, driver_pipeline, options_for, scored_row

from lasium.errors import ConfigError
from lasium.repro import generators, published, stages
from lasium.repro.cli import main as repro_main
from lasium.repro.omniglot import plan_omniglot, run_omniglot
from lasium.repro.omniglot_page import render_markdown
from lasium.repro.options import OmniglotOptions
from lasium.repro.rows import chosen_rows, plan_rows, plan_vae_rows
from lasium.repro.sizes import RATES, SIZES

VAE_KEYS = ["protonets-n-vae", "protonets-ro-vae", "protonets-oc-vae", "maml-n-vae", "maml-ro-vae", "maml-oc-vae"]
TUNED_KEYS = ["protonets-n-vae-sigma0.5"]  # rows.TUNED_VAE_ROWS, each after the row it tunes
ALL_VAE_KEYS = VAE_KEYS[:1] + TUNED_KEYS + VAE_KEYS[1:]


def file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def bundled_vae() -> dict:
    return generators.describe_generator("omniglot-vae")


def vae_folder(tmp_path: Path, name: str = "vae-fit", scale: float = 1.0) -> Path:
    """A lasium-fit-style VAE folder: the bundled VAE's files, its weights scaled by ``scale`` (another fit)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from lasium.generate.models.bundled_registry import bundled_folder

    source, folder = bundled_folder("omniglot-vae"), tmp_path / name
    shutil.copytree(source, folder)
    if scale != 1.0:
        weights = folder / "model.safetensors"
        with safe_open(str(weights), "pt") as f:
            tensors = {k: f.get_tensor(k) * scale for k in f.keys()}
            metadata = f.metadata()
        save_file(tensors, str(weights), metadata=metadata)
    return folder


# --- which rows ------------------------------------------------------------------------------------------------
def test_vae_rows_run_only_when_named():
    def keys(**changes) -> list[str]:
        options = replace(OmniglotOptions(), **changes)
        return [r.key for r in chosen_rows(options, options.stage_sizes())]

    assert not any(k.endswith("-vae") for k in keys(sizes="cpu"))  # optional rows run at cpu sizes, these do not
    assert not any(k.endswith("-vae") for k in keys(sizes="cpu", only=("lasium",)))
    assert keys(sizes="cpu", only=("vae",)) == ALL_VAE_KEYS
    assert keys(sizes="quick", only=("maml-ro-vae", "protonets-n")) == ["protonets-n", "maml-ro-vae"]
    assert keys(sizes="cpu", only=("vae",), optional=False) == []
    assert {r.generator for r in plan_vae_rows("maml")} == {"vae"}
    assert {r.generator for r in plan_rows("maml")} == {"gan"}


def test_vae_rows_are_the_gan_rows_with_the_vae(tmp_path):
    """Same budgets as the GAN row of the same strategy and learner; the VAE makes the tasks, into a set of its own."""
    p = driver_pipeline(tmp_path, sizes="cpu", vae="runs/vae-fit", data_root="/data")
    gan = {r.key: r for r in plan_rows("maml")}
    for row in plan_vae_rows("maml"):
        if row.key in TUNED_KEYS:
            continue  # test_a_tuned_vae_row_is_its_vae_row_at_its_own_sigma
        twin = gan[row.key.removesuffix("-vae")]
        ours, theirs = p.planned_commands(row), p.planned_commands(twin)
        gen = ours["gen"].split()
        assert gen[gen.index("--generator") + 1] == "runs/vae-fit"
        assert gen[gen.index("--data-root") + 1] == "/data"  # the VAE encodes real images as anchors
        assert gen[gen.index("--n-tasks") + 1] == theirs["gen"].split()[theirs["gen"].split().index("--n-tasks") + 1]
        assert "--sigma" not in gen and "--alpha" not in gen  # --tuned-for gives the VAE's own σ/α
        out = Path(gen[gen.index("--out") + 1])
        assert out.name == f"{row.source}-{p.preset_of(row)}-vae" and out.name != p.gen_stage(twin)[2].name
        assert p.shard_key(row) != p.shard_key(twin)
        assert ours["train"].replace(f"{out.name}", "S").replace(row.key, "R") == theirs["train"].replace(
            p.gen_stage(twin)[2].name, "S"
        ).replace(twin.key, "R")
        assert ours["eval"].replace(row.key, "R") == theirs["eval"].replace(twin.key, "R")
    assert "--data-root" not in p.planned_commands(gan["protonets-n"])["gen"]  # GAN rows' commands are unchanged


def test_a_tuned_vae_row_is_its_vae_row_at_its_own_sigma(tmp_path):
    """The σ-tuned VAE row: the VAE row's budgets, learner and test tasks; its tasks at its own σ, in its own set."""
    p = driver_pipeline(tmp_path, sizes="cpu")
    by_key = {r.key: r for r in plan_vae_rows("maml")}
    tuned, base = by_key["protonets-n-vae-sigma0.5"], by_key["protonets-n-vae"]
    assert (tuned.family, tuned.generator, tuned.optional) == ("vae", "vae", True)
    assert tuned.label == "LASIUM-N-VAE + ProtoNets, σ 0.5 (ours)" and tuned.note.startswith("σ 0.5 (the authors': 2)")
    ours, theirs = p.planned_commands(tuned), p.planned_commands(base)
    gen = ours["gen"].split()
    assert gen[gen.index("--sigma") + 1] == "0.5" and "--sigma" not in theirs["gen"].split()
    assert gen[gen.index("--n-tasks") + 1] == theirs["gen"].split()[theirs["gen"].split().index("--n-tasks") + 1]
    out = p.gen_stage(tuned)[2].name
    assert out == "n-protonets-32000-p0.5-vae" and out != p.gen_stage(base)[2].name
    assert ours["train"].replace(out, "S").replace(tuned.key, "R") == theirs["train"].replace(
        p.gen_stage(base)[2].name, "S"
    ).replace(base.key, "R")
    assert ours["eval"].replace(tuned.key, "R") == theirs["eval"].replace(base.key, "R")


# --- what runs, what a row records ---------------------------------------------------------------------------
class GeneratorStages(FakeStages):
    """FakeStages whose shard sets' manifests name the generator as lasium-gen does (its weights' sha256)."""

    def __call__(self, name, console, args, row=None, produces=None, continue_with=None) -> bool:
        ok = super().__call__(name, console, args, row, produces, continue_with)
        if console == "lasium-gen" and "--generator" in args:
            out = Path(args[args.index("--out") + 1])
            manifest = json.loads((out / "manifest.json").read_text())
            manifest["generator"] = generators.describe_generator(args[args.index("--generator") + 1])
            (out / "manifest.json").write_text(json.dumps(manifest))
        return ok


def test_a_vae_row_runs_its_stages_and_names_its_vae(tmp_path, monkeypatch, bundled_vae):
    by_key = {r.key: r for r in plan_rows("maml") + plan_vae_rows("maml")}
    p = driver_pipeline(tmp_path)
    fake = GeneratorStages()
    monkeypatch.setattr(p, "run", fake)
    for key in ("protonets-n", "protonets-n-vae", "maml-oc-vae"):
        p.do_row(by_key[key])
    assert fake.names() == [
        "gen-n-protonets",
        "preview-n",
        "train-protonets-n",
        "eval-protonets-n",
        "gen-n-protonets-vae",  # not the GAN row's set; its preview is the GAN set's (one per strategy)
        "train-protonets-n-vae",
        "eval-protonets-n-vae",
        "gen-oc-maml-vae",
        "preview-oc",
        "train-maml-oc-vae",
        "eval-maml-oc-vae",
    ]
    records = {r["key"]: r for r in p.rows}
    assert all(r["status"] == "ok" for r in records.values())
    gan = generators.describe_generator("omniglot-gan")
    assert records["protonets-n"]["generator"]["weights_sha256"] == gan["weights_sha256"]
    for key in ("protonets-n-vae", "maml-oc-vae"):
        assert records[key]["generator"] == {**bundled_vae, "spec": "omniglot-vae"}
        assert records[key]["family"] == "vae" and records[key]["eval"]["1"]["accuracy_pct"] == 50.0


def test_a_vae_that_is_not_one_is_refused_in_one_line(tmp_path):
    with pytest.raises(ConfigError, match="not a VAE"):
        generators.check_vae("omniglot-gan")
    runner = CliRunner()
    args = ["omniglot", "--plan", "--only", "vae", "--work", str(tmp_path / "w"), "--results", str(tmp_path / "r")]
    for spec, said in (("omniglot-gan", "not a VAE"), (str(tmp_path / "nothing"), "nothing")):
        result = runner.invoke(repro_main, [*args, "--vae", spec])
        assert result.exit_code == 2 and result.output.count("\n") == 1 and said in result.output, result.output
    with pytest.raises(ConfigError, match="--vae"):
        replace(OmniglotOptions(), vae=" ").validate()


# --- resuming ------------------------------------------------------------------------------------------------
FAKE_CONSOLE = r"""
import hashlib, json, pathlib, sys
console, args = sys.argv[1], sys.argv[2:]
with open(pathlib.Path(__file__).with_name("calls.jsonl"), "a") as f:
    f.write(json.dumps([console, *args]) + "\n")
out = pathlib.Path(args[args.index("--out") + 1])
if console == "lasium-gen":
    out.mkdir(parents=True, exist_ok=True)
    spec = pathlib.Path(args[args.index("--generator") + 1])
    sha = hashlib.sha256((spec / "model.safetensors").read_bytes()).hexdigest()
    (out / "manifest.json").write_text(json.dumps({"generator": {"kind": "vae", "weights_sha256": sha}}))
elif console == "lasium-shards":
    out.write_bytes(b"png")
elif console == "lasium-train":
    if (out / "last").exists() and "--resume" not in args:
        sys.exit("error: run folder already holds a run")
    (out / "last").mkdir(parents=True, exist_ok=True)
    (out / "last" / "state.json").write_text(json.dumps({"step": 2, "tasks_seen": 8}))
elif console == "lasium-eval":
    shards = json.loads(pathlib.Path(args[args.index("--checkpoint") + 1], "made-by").read_text())
    base = 50 + int(shards, 16) % 4000 / 100  # a figure that depends on the weights that made the tasks
    results = [dict(shots=s, accuracy=base / 100, ci95=0.01, accuracy_pct=base + s, ci95_pct=0.5, tasks=10, seconds=1)
               for s in (1, 5)]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"episode_digest": "e" * 64, "device": {}, "results": results}))
if console == "lasium-train":  # the run remembers which weights made its tasks
    shards = pathlib.Path(args[args.index("--shards") + 1])
    made = json.loads((shards / "manifest.json").read_text())["generator"]["weights_sha256"]
    (out / "made-by").write_text(json.dumps(made[:8]))
"""


@pytest.fixture()
def fake_consoles(tmp_path, monkeypatch):
    script = tmp_path / "fake" / "console.py"
    script.parent.mkdir()
    script.write_text(FAKE_CONSOLE)
    monkeypatch.setattr(stages, "tool", lambda name: [sys.executable, str(script), name])

    def calls() -> list[list[str]]:
        path = script.with_name("calls.jsonl")
        return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []

    return calls


def test_a_resumed_run_reuses_a_vae_row_only_while_its_weights_are_the_same(tmp_path, fake_consoles):
    """--vae names a fit folder. Resumed as it is, nothing runs again; after the fit went on in that folder (same
    spec, same commands, other weights), the row's set is made again, trained and scored again, and the row names
    the new weights."""
    folder = vae_folder(tmp_path)
    options = options_for(tmp_path, only=("protonets-n-vae",), vae=str(folder), keep_shards=True)
    first = run_omniglot(options)
    row = first["rows"][0]
    assert row["status"] == "ok" and row["generator"]["weights_sha256"] == file_sha(folder / "model.safetensors")
    assert [c[0] for c in fake_consoles()] == ["lasium-gen", "lasium-shards", "lasium-train", "lasium-eval"]

    calls = len(fake_consoles())
    again = run_omniglot(replace(options, resume=True))
    assert len(fake_consoles()) == calls  # reused from the page (same commands, same weights)
    assert again["rows"][0]["eval"] == row["eval"] and again["rows"][0].get("reused")

    refitted = vae_folder(tmp_path / "next", scale=0.5)  # the fit continued: other weights in the same folder
    shutil.copy(refitted / "model.safetensors", folder / "model.safetensors")
    resumed = run_omniglot(replace(options, resume=True))
    ran = [c[0] for c in fake_consoles()[calls:]]
    assert ran == ["lasium-gen", "lasium-train", "lasium-eval"]  # nothing of the old weights' work was reused
    assert "--resume" not in fake_consoles()[calls + 1]  # trained from the start, in a cleared run folder
    new = resumed["rows"][0]
    assert new["status"] == "ok" and new["generator"]["weights_sha256"] == file_sha(folder / "model.safetensors")
    assert new["generator"]["weights_sha256"] != row["generator"]["weights_sha256"]
    assert new["eval"] != row["eval"]  # scored on the new weights' tasks
    manifest = json.loads((options.work / "shards" / "n-protonets-vae" / "manifest.json").read_text())
    assert manifest["generator"]["weights_sha256"] == new["generator"]["weights_sha256"]


def test_committed_rows_are_reused_only_with_the_generator_they_name(tmp_path):
    p = driver_pipeline(tmp_path, sizes="cpu", resume=True)
    row = next(r for r in plan_rows("maml") if r.key == "protonets-n")
    planned = p.new_record(row)
    assert planned["generator"]["weights_sha256"] == generators.describe_generator("omniglot-gan")["weights_sha256"]
    done = scored_row("protonets-n", row.label, "protonets", "lasium", 94.0, 98.0, commands=planned["commands"])
    for recorded, reused in (
        (None, True),  # judged by its commands alone
        (dict(planned["generator"]), True),
        ({"kind": "gan", "weights_sha256": "0" * 64}, False),  # made by other weights under the same name
    ):
        p.committed_rows["protonets-n"] = {**done, **({"generator": recorded} if recorded else {})}
        assert p.reuse_committed(row, dict(planned)) is reused
    # a reused row keeps its figures and stages, under today's label and note (they describe the same commands)
    p.committed_rows["protonets-n"] = {**done, "label": "an older wording", "note": "an older note"}
    record = dict(planned)
    assert p.reuse_committed(row, record) and (record["label"], record["note"]) == (row.label, row.note)
    assert record["eval"] == done["eval"] and record["reused"]
    # a row written before rows named their generator: its command names the bundled GAN, whose weights are
    # unchanged in git since before those pages' runs
    legacy = generators.legacy_generator(done)
    assert legacy["weights_sha256"] == planned["generator"]["weights_sha256"] and legacy["legacy"]
    assert generators.legacy_generator({**done, "commands": {"gen": "lasium-gen --generator runs/gan"}}) is None
    assert generators.legacy_generator({**done, "commands": {"eval": "lasium-eval"}}) is None


def test_committed_page_rows_get_the_bundled_gan_they_were_made_with(tmp_path, monkeypatch):
    """Every finished row of the committed page that a generator made names it once the page is read."""
    repo = Path(__file__).resolve().parent.parent
    monkeypatch.chdir(repo)
    p = driver_pipeline(tmp_path, sizes="cpu", ablation=True, resume=True, results=repo / "results")
    made = [r for r in p.committed_rows.values() if r.get("source") in ("n", "ro", "oc", "mix")]
    gan = [r for r in made if r.get("family") != "vae"]
    assert gan and all(r["generator"]["weights_sha256"] == generators.LEGACY_BUNDLED["omniglot-gan"]
                       ["weights_sha256"] for r in gan)  # fmt: skip
    assert all(
        r["generator"]["kind"] == "vae" and r["generator"]["name"] == "omniglot-vae" for r in made if r not in gan
    )
    others = [r for r in p.committed_rows.values() if r.get("source") in ("real", "umtra", "cactus", "scratch")]
    assert others and not any(r.get("generator") for r in others)


# --- planning ------------------------------------------------------------------------------------------------
def test_plan_gives_every_stage_and_how_a_long_one_continues(tmp_path):
    options = options_for(tmp_path, sizes="cpu", only=("vae",), device="auto", threads=None)
    lines = plan_omniglot(options)
    rows = [ln.split()[0] for ln in lines[1:8]]
    assert rows == ALL_VAE_KEYS and all("to run: ~" in ln for ln in lines[1:8])
    stage_lines = lines[lines.index(next(ln for ln in lines if ln.startswith("stages to run"))) + 1 : -1]
    names = [ln.split()[0] for ln in stage_lines]
    assert names[:6] == [
        "gen-n-protonets-vae",
        "train-protonets-n-vae",
        "eval-protonets-n-vae",
        "gen-n-protonets-32000-p0.5-vae",
        "train-protonets-n-vae-sigma0.5",
        "eval-protonets-n-vae-sigma0.5",
    ]
    assert len(names) == 21 and not any("over 3 h" in ln for ln in stage_lines)  # each fits a sitting at RATES
    assert not options.work.exists()

    slow = driver_pipeline(tmp_path, sizes="cpu", rates={**RATES["cpu"], "gen": 0.1, "maml": 0.1, "image_step": 1.0})
    estimates = slow.stage_estimates(next(r for r in plan_vae_rows("maml") if r.key == "maml-ro-vae"))
    assert [e["console"] for e in estimates] == ["lasium-gen", "lasium-train", "lasium-eval"]
    assert all(e["seconds"] > 3 * 3600 for e in estimates)
    assert "shards" in estimates[0]["resumes"] and "checkpoint" in estimates[1]["resumes"]
    assert f"every {SIZES['cpu'].checkpoint_every:,} steps" in estimates[1]["resumes"]
    assert "already scored" in estimates[2]["resumes"]
    assert slow.estimate(plan_vae_rows("maml")[4]) == pytest.approx(sum(e["seconds"] for e in estimates))


# --- the page ------------------------------------------------------------------------------------------------
def test_page_puts_each_vae_row_beside_the_papers_cell(monkeypatch, bundled_vae):
    rows = [
        scored_row(
            "protonets-n-vae",
            "LASIUM-N-VAE + ProtoNets (ours)",
            "protonets",
            "vae",
            85.25,
            96.5,
            source="n",
            generator={**bundled_vae, "spec": "omniglot-vae"},
        ),  # fmt: skip
        scored_row("maml-oc-vae", "LASIUM-OC-VAE + MAML (ours)", "maml", "vae", 80.0, 93.0, source="oc"),
        scored_row(
            "protonets-n-vae-sigma0.5",
            "LASIUM-N-VAE + ProtoNets, σ 0.5 (ours)",
            "protonets",
            "vae",
            89.0,
            97.0,
            source="n",
            note="σ 0.5, the value validation picked",
        ),  # fmt: skip
        scored_row("protonets-n", "LASIUM-N-GAN + ProtoNets (ours)", "protonets", "lasium", 94.17, 98.7, source="n"),
    ]
    results = {"rows": rows, "protocol": {"tasks": 1000}, "stages": []}

    def line_of(md: str, label: str, section: str) -> str:
        part = md.split(f"## {section}")[1].split("\n## ")[0]
        return next(ln for ln in part.splitlines() if ln.startswith(f"| **{label}**"))

    md = render_markdown(results)
    vae_line = line_of(md, "LASIUM-N-VAE + ProtoNets (ours)", "LASIUM with a VAE")
    assert "85.25 ± 0.50" in vae_line and vae_line.count("not looked up") == 2
    assert bundled_vae["weights_sha256"][:12] in vae_line
    assert "LASIUM-N-VAE" not in md.split("## LASIUM with a VAE")[0]  # not in the GAN table nor the GAN verdicts
    assert "89.00 ± 0.50" in line_of(md, "LASIUM-N-VAE + ProtoNets, σ 0.5 (ours)", "LASIUM with a VAE")
    assert "- LASIUM-N-VAE + ProtoNets, σ 0.5 (ours): σ 0.5, the value validation picked" in md
    monkeypatch.setitem(published.PAPER_VAE_CELLS, ("oc", "maml"), (81.0, 92.5))
    md = render_markdown(results)
    oc_line = line_of(md, "LASIUM-OC-VAE + MAML (ours)", "LASIUM with a VAE")
    assert "| 81.00 | 92.50 | -1.00 / +0.50 |" in oc_line and "not recorded" in oc_line
    generator_lines = md.split("## Generators")[1].split("\n## ")[0]
    assert bundled_vae["weights_sha256"][:12] in generator_lines and "not recorded" in generator_lines


# --- the sweep's generator -----------------------------------------------------------------------------------


def _record_sweep_stages(monkeypatch, bonus=lambda out: 0.0) -> list:
    """Replace every stage a sweep runs by a record of (name, args); an evaluation writes 80 + shots (+ ``bonus`` of its
    output path) per shot. Returns the record."""
    ran = []

    def fake_run(self, name, console, args, row=None, produces=None, continue_with=None, identity=None):
        ran.append((name, args))
        if console == "lasium-eval":
            out = Path(args[args.index("--out") + 1])
            out.parent.mkdir(parents=True, exist_ok=True)
            cells = [dict(shots=s, accuracy_pct=80.0 + s + bonus(out), ci95_pct=0.5, tasks=10) for s in (1, 5)]
            out.write_text(json.dumps({"results": cells, "episode_digest": "d" * 64}))
        return True

    monkeypatch.setattr(stages.StageRunner, "run", fake_run)
    return ran


def test_a_sweep_scores_the_points_of_the_generator_it_is_given(tmp_path, monkeypatch, bundled_vae):
    """lasium-repro sweep --generator: every point's generation names it, the page records its weights, and a
    resumed sweep takes no point made by other weights under the same spec."""
    from lasium.repro.sweep import PointBudget, SweepOptions
    from lasium.repro.sweep import run as sweep

    ran = _record_sweep_stages(monkeypatch)
    folder = vae_folder(tmp_path)
    options = SweepOptions(budget=PointBudget(tasks=24, iterations=4, val_tasks=10), strategies=("n",),
                           values=(0.5,), only="parameter", generator=str(folder), work=tmp_path / "w",
                           results=tmp_path / "r")  # fmt: skip
    first = sweep(options)
    gen = next(args for name, args in ran if name.startswith("gen-"))
    assert gen[gen.index("--generator") + 1] == str(folder)
    assert first["generator"]["weights_sha256"] == file_sha(folder / "model.safetensors")
    assert f"--generator {folder}" in first["command"]
    assert first["generator"]["weights_sha256"][:12] in (tmp_path / "r" / "sweep.md").read_text()
    shutil.rmtree(tmp_path / "w")
    sweep(replace(options, resume=True))
    assert len(ran) == 3  # the page's point, same commands and weights
    shutil.rmtree(tmp_path / "w")
    shutil.copy(vae_folder(tmp_path / "b", scale=0.5) / "model.safetensors", folder / "model.safetensors")
    sweep(replace(options, resume=True))
    assert len(ran) == 6  # other weights under the same spec: run again
    default = SweepOptions(budget=options.budget, strategies=("n",), values=(0.5,), only="parameter",
                           work=tmp_path / "w2", results=tmp_path / "r2")  # fmt: skip
    sweep(default)
    assert "--generator" not in ran[-3][1]  # the bundled GAN: commands as the committed sweeps recorded them


# --- real stages ----------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_quick_run_of_a_vae_row_with_real_stages(tmp_path, omniglot_root, bundled_vae):
    """lasium-gen with the bundled VAE (anchors: encoded real train images), lasium-train, lasium-eval, at the quick
    sizes; the row names the VAE its shard set's manifest records."""
    import subprocess

    results = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "lasium.repro.cli", "omniglot", "--sizes", "quick", "--only", "protonets-n-vae"]
        + ["--work", str(tmp_path / "work"), "--results", str(results), "--data-root", str(omniglot_root)]
        + ["--device", "cpu", "--keep-shards"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    data = json.loads((results / "omniglot.json").read_text())
    (row,) = data["rows"]
    assert row["status"] == "ok" and set(row["eval"]) == {"1", "5"}, data["stages"]
    assert row["generator"]["weights_sha256"] == bundled_vae["weights_sha256"] and row["generator"]["kind"] == "vae"
    manifest = json.loads((tmp_path / "work" / "shards" / "n-protonets-vae" / "manifest.json").read_text())
    assert manifest["generator"]["weights_sha256"] == bundled_vae["weights_sha256"]
    assert manifest["source"]  # the VAE's anchors: real train images, recorded with their fingerprint
    assert "## LASIUM with a VAE" in (results / "omniglot.md").read_text()


def test_a_sweep_scores_task_mixtures_on_validation_tasks(tmp_path, monkeypatch):
    """--mixtures: a point per mixture, a set per source shared by every mixture, training on all of them with
    their weights; the page and its pick hold the mixtures' validation figures."""
    from lasium.repro.sweep import PointBudget, SweepOptions
    from lasium.repro.sweep import run as sweep

    ran = _record_sweep_stages(monkeypatch, bonus=lambda out: 5.0 if "mix-n0.5-umtra0.5" in out.name else 0.0)
    options = SweepOptions(budget=PointBudget(tasks=24, iterations=4, val_tasks=10), only="mixture",
                           mixtures=("n:1", "n:0.5+umtra:0.5"), work=tmp_path / "w",
                           results=tmp_path / "r")  # fmt: skip
    results = sweep(options)
    assert [name for name, _ in ran] == [
        "gen-n-sigma-preset", "train-mix-n1-shift5-affine", "eval-mix-n1-shift5-affine",
        "gen-umtra", "train-mix-n0.5-umtra0.5-shift5-affine", "eval-mix-n0.5-umtra0.5-shift5-affine",
    ]  # fmt: skip
    train = dict(ran)["train-mix-n0.5-umtra0.5-shift5-affine"]
    shards = [train[i + 1] for i, a in enumerate(train) if a == "--shards"]
    assert shards == [
        f"{tmp_path / 'w' / 'shards' / 'n-sigma-preset'}:0.5",
        f"{tmp_path / 'w' / 'shards' / 'umtra'}:0.5",
    ]
    assert train[train.index("--augment") + 1] == "shift5-affine"
    umtra = dict(ran)["gen-umtra"]
    assert umtra[umtra.index("--source") + 1] == "umtra" and umtra[umtra.index("--n-tasks") + 1] == "24"
    evaluate = dict(ran)["eval-mix-n0.5-umtra0.5-shift5-affine"]
    assert evaluate[evaluate.index("--split") + 1] == "val"
    assert [r["status"] for r in results["rows"]] == ["ok", "ok"]
    md = (tmp_path / "r" / "sweep.md").read_text()
    assert "| n × 0.5 + umtra × 0.5 | `shift5-affine` | 86.00 ± 0.50 | 90.00 ± 0.50 |" in md
    assert "- task mixture: `n:0.5+umtra:0.5`" in md and (tmp_path / "r" / "sweep-mixture.png").is_file()
    assert "--mixtures n:1,n:0.5+umtra:0.5" in results["command"]
    for bad in ("n:0.5+gan:0.5", "n:0", "n:1+n:1", "n"):
        with pytest.raises(ConfigError, match="--mixtures"):
            replace(options, mixtures=(bad,)).validate()
    with pytest.raises(ConfigError, match="--only mixture"):
        replace(options, mixtures=()).validate()


def test_a_mixture_source_may_name_its_own_generator(tmp_path, monkeypatch):
    """--mixtures n:0.5+n@omniglot-vae:0.5: the second source's set is generated on that generator, in a folder named
    after it (the sweep's --generator is not added to its command), and the point's names keep to folder-safe
    characters; a generator on UMTRA, an empty one and two generators whose folders would clash are refused."""
    from lasium.repro.sweep import PointBudget, SweepOptions
    from lasium.repro.sweep import run as sweep

    ran = _record_sweep_stages(monkeypatch)
    options = SweepOptions(budget=PointBudget(tasks=24, iterations=4, val_tasks=10), only="mixture",
                           mixtures=("n:0.5+n@omniglot-vae:0.5",), work=tmp_path / "w", results=tmp_path / "r",
                           generator="omniglot-gan")  # fmt: skip
    results = sweep(options)
    names = dict(ran)
    assert list(names) == [
        "gen-n-sigma-preset", "gen-n-sigma-preset-at-omniglot-vae", "train-mix-n0.5-n-at-omniglot-vae0.5-shift5-affine",
        "eval-mix-n0.5-n-at-omniglot-vae0.5-shift5-affine",
    ]  # fmt: skip
    own = names["gen-n-sigma-preset-at-omniglot-vae"]
    assert own[own.index("--generator") + 1] == "omniglot-vae" and own.count("--generator") == 1
    assert "--generator" not in names["gen-n-sigma-preset"]  # the sweep's own generator: lasium-gen's default
    train = names["train-mix-n0.5-n-at-omniglot-vae0.5-shift5-affine"]
    assert [train[i + 1] for i, a in enumerate(train) if a == "--shards"] == [
        f"{tmp_path / 'w' / 'shards' / 'n-sigma-preset'}:0.5",
        f"{tmp_path / 'w' / 'shards' / 'n-sigma-preset-at-omniglot-vae'}:0.5",
    ]
    assert results["rows"][0]["mix"] == "n:0.5+n@omniglot-vae:0.5"
    for bad in ("n:0.5+umtra@omniglot-gan:0.5", "n@:1", "n@omniglot-gan:0.5+n@omniglot-gan:0.5"):
        with pytest.raises(ConfigError, match="--mixtures"):
            replace(options, mixtures=(bad,)).validate()
    with pytest.raises(ConfigError, match="share a folder"):
        replace(options, mixtures=("n:0.5+n@a/gan:0.25+ro@b/gan:0.25",)).validate()
