"""The README's "Use the shards from your own trainer" examples run as written: its two Python blocks (a plain
PyTorch loop through a stock ``webdataset`` reader, then the same loop through Hugging Face ``datasets``) are
taken from README.md and run, one after the other, in a fresh interpreter on a small set made by ``lasium-gen``,
without importing lasium. A change to the README or to the set format that breaks them fails here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import invoke_gen, tiny_gen_args

pytest.importorskip("datasets")

README = Path(__file__).resolve().parent.parent / "README.md"
SECTION = "## Use the shards from your own trainer"
NO_LASIUM = """
import sys
loaded = sorted(m for m in sys.modules if m == "lasium" or m.startswith("lasium."))
assert not loaded, f"the README examples imported {loaded}"
"""


def readme_blocks() -> list[str]:
    """The Python code blocks of the README section, in order."""
    text = README.read_text(encoding="utf-8")
    assert SECTION in text, f"README.md lost its section {SECTION!r}"
    body = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", body, re.S)


def test_the_section_has_one_webdataset_and_one_datasets_example_without_lasium():
    blocks = readme_blocks()
    assert len(blocks) == 2
    assert "webdataset as wds" in blocks[0] and "import datasets" in blocks[1]
    assert not any(re.search(r"^\s*(import|from)\s+lasium\b", b, re.M) for b in blocks)


def _tiny_set(tmp_path: Path, compression: str) -> None:
    out = tmp_path / "sets" / "oc"  # the examples' SET
    result = invoke_gen("--strategy", "oc", *tiny_gen_args(out, n_tasks=8, per_shard=4), "--compression", compression)
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("oc-*.json"))) == 2  # sidecars beside the shards: the examples must skip them


def _check_losses(stdout: str) -> None:
    losses = re.findall(r"^task (\d+): loss (\d+\.\d+)$", stdout, re.M)
    assert [int(i) for i, _ in losses[:8]] == list(range(8))  # webdataset: every task, in order
    assert sorted(int(i) for i, _ in losses[8:]) == list(range(8))  # datasets: every task, shuffled
    assert len(losses) == 16 and all(0 < float(v) < 10 for _, v in losses)


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_readme_examples_train_on_a_set(tmp_path, monkeypatch, capsys, compression):
    """The blocks run in this process (the interpreter's imports are paid once), from the folder holding sets/."""
    _tiny_set(tmp_path, compression)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    code = compile("\n".join(readme_blocks()), str(README) + ":" + SECTION, "exec")
    capsys.readouterr()
    exec(code, {"__name__": "__readme__"})
    _check_losses(capsys.readouterr().out)


@pytest.mark.slow
def test_readme_examples_run_without_lasium(tmp_path):
    """In a fresh interpreter (about 25 s on the loaded 2-core CPU: torch and datasets load again): no lasium
    module is imported."""
    _tiny_set(tmp_path, "gzip")
    script = tmp_path / "readme_examples.py"
    script.write_text("\n".join(readme_blocks()) + NO_LASIUM, encoding="utf-8")
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    env.pop("PYTHONPATH", None)
    run = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    _check_losses(run.stdout)
