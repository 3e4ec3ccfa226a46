"""``lasium-eval --resume``: an interrupted evaluation continues from ``<out>.partial.json`` with the result of
the uninterrupted one; a partial file of another evaluation is refused in one line."""

from __future__ import annotations

import json

import pytest
from test_eval_cli import FAST, folder, invoke, make_run  # noqa: F401 (folder is a fixture)

from lasium.evaluate.journal import EvalJournal, partial_path

pytestmark = pytest.mark.usefixtures("one_thread")

CHUNKED = FAST + ["--chunk", "2"]  # 6 tasks per shot: 3 chunks each, a journal write after every one


class Interrupted(Exception):
    pass


def interrupt_after(monkeypatch, chunks: int) -> None:
    """Make the evaluation stop (as if killed) right after its ``chunks``-th chunk was saved."""
    original = EvalJournal.record
    calls = {"n": 0}

    def record(self, *args, **kwargs):
        original(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == chunks:
            raise Interrupted

    monkeypatch.setattr(EvalJournal, "record", record)


def scores(path) -> list[tuple[int, float, float]]:
    report = json.loads(path.read_text())
    return [(r["shots"], r["accuracy"], r["ci95"]) for r in report["results"]]


@pytest.mark.parametrize("algo", ["maml", "protonets"])
def test_resumed_evaluation_equals_the_uninterrupted_one(tmp_path, folder, monkeypatch, algo):  # noqa: F811
    run = make_run(tmp_path / algo, algo)
    base = ["--checkpoint", str(run), "--dataset", folder] + CHUNKED
    straight = tmp_path / "straight.json"
    assert invoke(base + ["--out", str(straight)])[0] == 0
    assert not partial_path(straight).exists()  # removed once the report is written

    out = tmp_path / "resumed.json"
    with monkeypatch.context() as m:
        interrupt_after(m, 4)  # all 3 chunks of 1-shot, the first of 2-shot
        code, _, _ = invoke(base + ["--out", str(out)])
    assert code != 0 and not out.exists()
    partial = json.loads(partial_path(out).read_text())
    assert {s: len(e["accuracies"]) for s, e in partial["shots"].items()} == {"1": 6, "2": 2}

    code, _, stderr = invoke(base + ["--out", str(out), "--resume"])
    assert code == 0, stderr
    assert scores(out) == scores(straight)
    assert json.loads(out.read_text())["resumed_tasks"] == {"1": 6, "2": 2}
    assert "resumed: 6 1-shot tasks" in stderr
    assert not partial_path(out).exists()


def test_without_resume_a_partial_file_is_started_over(tmp_path, folder, monkeypatch):  # noqa: F811
    run = make_run(tmp_path / "maml", "maml")
    base = ["--checkpoint", str(run), "--dataset", folder] + CHUNKED
    out = tmp_path / "r.json"
    with monkeypatch.context() as m:
        interrupt_after(m, 2)
        invoke(base + ["--out", str(out)])
    doc = json.loads(partial_path(out).read_text())
    doc["shots"]["1"]["accuracies"] = [0.0, 0.0]  # what a resume would keep
    partial_path(out).write_text(json.dumps(doc))
    assert invoke(base + ["--out", str(out)])[0] == 0
    report = json.loads(out.read_text())
    assert "resumed_tasks" not in report
    # the same evaluation resumed from the doctored file keeps its two zeros: the journal is really used
    with monkeypatch.context() as m:
        interrupt_after(m, 1)
        invoke(base + ["--out", str(tmp_path / "z.json")])
    z = json.loads(partial_path(tmp_path / "z.json").read_text())
    z["shots"]["1"]["accuracies"] = [0.0, 0.0]
    partial_path(tmp_path / "z.json").write_text(json.dumps(z))
    assert invoke(base + ["--out", str(tmp_path / "z.json"), "--resume"])[0] == 0
    first = json.loads((tmp_path / "z.json").read_text())["results"][0]
    assert first["accuracy"] < report["results"][0]["accuracy"]


def test_resume_refuses_another_evaluations_partial_file(tmp_path, folder, monkeypatch):  # noqa: F811
    one = make_run(tmp_path / "one", "maml")
    out = tmp_path / "r.json"
    with monkeypatch.context() as m:
        interrupt_after(m, 1)
        invoke(["--checkpoint", str(one), "--dataset", folder, "--out", str(out)] + CHUNKED)
    other = make_run(tmp_path / "two", "protonets")
    code, _, stderr = invoke(["--checkpoint", str(other), "--dataset", folder, "--out", str(out), "--resume"] + CHUNKED)
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "holds another evaluation" in lines[0] and "weights" in lines[0]
    assert not out.exists()
    # another protocol (more adaptation steps) is another evaluation too
    code, _, stderr = invoke(
        ["--checkpoint", str(one), "--dataset", folder, "--out", str(out), "--resume"]
        + CHUNKED
        + ["--adapt-steps", "3"]
    )
    assert code == 2 and "protocol" in stderr
    partial_path(out).write_text("{not json")
    code, _, stderr = invoke(["--checkpoint", str(one), "--dataset", folder, "--out", str(out), "--resume"] + CHUNKED)
    assert code == 2 and "cannot read the partial evaluation" in stderr


def test_resume_with_nothing_to_resume_scores_everything(tmp_path, folder):  # noqa: F811
    run = make_run(tmp_path / "p", "protonets")
    out = tmp_path / "r.json"
    code, _, stderr = invoke(["--checkpoint", str(run), "--dataset", folder, "--out", str(out), "--resume"] + FAST)
    assert code == 0 and "resumed_tasks" not in json.loads(out.read_text())
