"""A short run of the shard-set fuzz campaign (``tests/fuzz_sets.py``; issue 25, part 4).

The campaign mutates small valid sets (tar headers and members, gzip streams, npy headers, meta.json, HDF5
attributes and objects, manifest and sidecar JSON, files) and feeds each to the trainer's task stream,
``lasium-shards verify|inspect|preview|index`` and, for a sample, ``lasium-train``; see the script's docstring
for the invariants. Here it runs the derandomized ``lasium-fuzz-ci`` profile (a dozen cases, the same ones on
every machine); the long run is ``python tests/fuzz_sets.py --cases 10000``. The other tests check that the
campaign does see a broken invariant when there is one.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

pytest.importorskip("hypothesis")
# the campaign's modules live beside the tests (tests/fuzz_*.py), on the tests' path (pyproject.toml)
import fuzz_sets  # noqa: E402
from fuzz_cases import MARK  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

PIXEL_CASE = {
    "base": "tar",
    "mutations": [{"op": "pixel", "shard": 0, "layer": "raw", "member": 0, "offset": 5, "xor": 1}],
    "reseal": False,
    "drop_manifest": False,
    "where": "outside",
    "skip_corrupt": True,
    "allow_partial": False,
    "train_cli": False,
}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """(work folder, base sets, server URL): built once for the module."""
    work = tmp_path_factory.mktemp("fuzz")
    with fuzz_sets.campaign_env(work) as (bases, base_url):
        yield work, bases, base_url


@pytest.fixture(autouse=True)
def clean_cases(env):
    """Each test starts without the case folders of the ones before (a planted mark left in one would count)."""
    yield
    for case_dir in env[0].glob("case-*"):
        shutil.rmtree(case_dir, ignore_errors=True)


def test_short_fuzz_campaign_breaks_no_invariant(env):
    work, bases, base_url = env
    tally = fuzz_sets.run_campaign(profile="lasium-fuzz-ci", work=work, timeout=120, env=(bases, base_url))
    assert tally.cases == 12
    report = "\n".join(f"{case}\n  " + "\n  ".join(v) for case, v in tally.broken)
    assert not tally.broken, f"{len(tally.broken)} case(s) broke an invariant:\n{report}"


def test_the_campaign_sees_changed_bytes_reach_the_learner(env, monkeypatch):
    """With the reader's byte check switched off, a changed pixel reaches the stream and preview: reported."""
    import lasium.shards.reader as reader

    work, bases, base_url = env
    assert fuzz_sets.run_isolated(PIXEL_CASE, bases, work, base_url, 120) == []
    monkeypatch.setattr(reader, "open_checked_shard", lambda url, entry: open(url, "rb"))
    broken = fuzz_sets.run_isolated(PIXEL_CASE, bases, work, base_url, 120)
    assert any("task 0 differs from the original task" in v for v in broken), broken
    assert any(v.startswith("preview: drew tasks") for v in broken), broken


def test_the_campaign_sees_a_traceback_a_hang_and_a_planted_command(env, monkeypatch):
    work, bases, base_url = env

    def crash(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("lasium.shards.cli.verify_shard_set", crash)
    broken = fuzz_sets.run_isolated(PIXEL_CASE, bases, work, base_url, 120)
    assert any(v.startswith("verify: traceback (RuntimeError: a bug)") for v in broken), broken

    def runs_a_command(*args, **kwargs):
        (Path.cwd() / MARK).touch()  # what 'pipe:touch PWNED' would do
        raise SystemExit(0)

    monkeypatch.setattr("lasium.shards.cli.verify_shard_set", runs_a_command)
    broken = fuzz_sets.run_isolated(PIXEL_CASE, bases, work, base_url, 120)
    assert any(v.startswith("a planted command ran") for v in broken), broken

    monkeypatch.setattr("lasium.shards.cli.verify_shard_set", lambda *a, **k: time.sleep(60))
    assert fuzz_sets.run_isolated(PIXEL_CASE, bases, work, base_url, 3) == ["hang: the case did not finish within 3 s"]


def test_a_json_mutation_after_one_that_nested_the_file_too_deep_is_no_fuzzer_error(env):
    """Found in a long run (case 6366 of seed 0): the campaign's own JSON mutation raised RecursionError on a
    manifest an earlier mutation had nested too deep to parse; it now leaves such a file as it is."""
    work, bases, base_url = env
    case = {
        "base": "h5",
        "mutations": [
            {"file": "manifest", "op": "json_raw", "pos": 7599, "index": 1, "action": "deep"},
            {"file": "manifest", "op": "json", "index": 0, "path": ["config", "image_shape", 0], "action": "set"}
            | {"value": []},
        ],
        "skip_corrupt": True,
        "train_cli": False,
        "drop_manifest": False,
        "where": "manifest",
        "allow_partial": False,
        "reseal": False,
    }
    assert fuzz_sets.run_isolated(case, bases, work, base_url, 120) == []
