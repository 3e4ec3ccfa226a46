"""``lasium-eval --workers N``: the tasks are scored in N spawned processes with the scores of one process, the
journal of an interrupted run holds every chunk scored (not only a prefix), and bad uses are one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_eval_cli import FAST, folder, invoke, make_run  # noqa: F401 (folder is a fixture)
from test_eval_resume import interrupt_after, scores

from lasium.evaluate.journal import EvalJournal, partial_path
from lasium.evaluate.parallel import share_out
from lasium.evaluate.protocol import EvalProtocol, make_episodes
from lasium.evaluate.scoring import pending_chunks, score_episodes
from lasium.train import LearnerConfig, build_learner

pytestmark = pytest.mark.usefixtures("one_thread")

CPU = torch.device("cpu")


def test_share_out_gives_contiguous_groups_of_about_equal_tasks():
    chunks = [(a, a + 2) for a in range(0, 20, 2)]
    groups = share_out(chunks, 3)
    assert [c for g in groups for c in g] == chunks  # every chunk once, in order
    assert [sum(b - a for a, b in g) for g in groups] == [8, 6, 6]
    assert share_out(chunks[:2], 5) == [[(0, 2)], [(2, 4)]]  # never an empty worker
    uneven = [(0, 1), (1, 2), (2, 3), (10, 12), (12, 14)]  # a resumed run: chunks with holes between them
    assert [c for g in share_out(uneven, 2) for c in g] == uneven


def test_pending_chunks_are_the_chunks_with_a_task_still_to_score():
    scored = np.array([0.5, 0.5, np.nan, 0.5, np.nan, np.nan, 1.0])
    assert pending_chunks(7, 2, scored) == [(2, 4), (4, 6)]
    assert pending_chunks(7, 3, None) == [(0, 3), (3, 6), (6, 7)]


def tiny_maml() -> torch.nn.Module:
    torch.manual_seed(3)
    return build_learner(LearnerConfig(algo="maml", ways=5, image_shape=(16, 16, 1), hidden=4))


def random_episodes(tasks: int):
    from lasium.data import LabeledImages

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(8 * 6, 16, 16, 1), dtype=np.uint8)
    labels = np.repeat(np.arange(8), 6)
    data = LabeledImages(
        images, labels, [f"c{i}" for i in range(8)], [f"noise/{i}" for i in range(48)], "0" * 64, "noise", "test"
    )
    return make_episodes(data, EvalProtocol(ways=5, queries=3, tasks=tasks, seed=1), 2)


def test_workers_score_exactly_as_one_process():
    learner, episodes = tiny_maml(), random_episodes(7)
    one = score_episodes(learner, episodes, CPU, steps=3, lr=0.4, chunk=2)
    seen: list[int] = []
    three = score_episodes(
        learner,
        episodes,
        CPU,
        steps=3,
        lr=0.4,
        chunk=2,
        workers=3,
        on_chunk=lambda acc: seen.append(int(np.count_nonzero(~np.isnan(acc)))),
    )
    np.testing.assert_array_equal(three, one)
    assert sorted(seen) == seen and seen[-1] == 7 and len(seen) == 4  # one call per chunk, as they arrive
    # a resumed scoring with holes: only the missing chunks are scored, the kept ones are not touched
    holes = one.copy()
    holes[[0, 5]] = np.nan
    holes[3] = 0.123  # a kept value stays what the journal said
    resumed = score_episodes(learner, episodes, CPU, steps=3, lr=0.4, chunk=2, workers=2, scored=holes)
    expected = one.copy()
    expected[3] = 0.123
    np.testing.assert_array_equal(resumed, expected)


def test_a_failing_worker_stops_the_evaluation_with_its_error():
    learner, episodes = tiny_maml(), random_episodes(4)
    episodes.perm[2:] = 99  # labels out of range: the loss fails inside the second worker
    with pytest.raises(RuntimeError, match="an evaluation worker failed"):
        score_episodes(learner, episodes, CPU, steps=1, lr=0.4, chunk=1, workers=2)


def test_cli_workers_give_the_one_process_report_and_resume_from_holes(tmp_path, folder, monkeypatch):  # noqa: F811
    run = make_run(tmp_path / "maml", "maml")
    base = ["--checkpoint", str(run), "--dataset", folder, "--chunk", "2"] + FAST
    straight, parallel = tmp_path / "straight.json", tmp_path / "parallel.json"
    assert invoke(base + ["--out", str(straight)])[0] == 0
    code, _, stderr = invoke(base + ["--out", str(parallel), "--workers", "2"])
    assert code == 0, stderr
    assert scores(parallel) == scores(straight)
    assert json.loads(parallel.read_text())["workers"] == 2 and "workers" not in json.loads(straight.read_text())
    assert json.loads(parallel.read_text())["episode_digest"] == json.loads(straight.read_text())["episode_digest"]

    # interrupted after 4 chunks: 1-shot complete, 2-shot with one chunk, wherever its worker was
    out = tmp_path / "resumed.json"
    with monkeypatch.context() as m:
        interrupt_after(m, 4)
        code, _, _ = invoke(base + ["--out", str(out), "--workers", "2"])
    assert code != 0 and not out.exists()
    partial = json.loads(partial_path(out).read_text())
    kept = {s: sum(a is not None for a in e["accuracies"]) for s, e in partial["shots"].items()}
    assert kept == {"1": 6, "2": 2}
    code, _, stderr = invoke(base + ["--out", str(out), "--resume"])  # one process resumes a run of two
    assert code == 0, stderr
    assert scores(out) == scores(straight)
    assert json.loads(out.read_text())["resumed_tasks"] == {"1": 6, "2": 2}


def test_journal_keeps_scored_tasks_around_holes(tmp_path):
    journal = EvalJournal(tmp_path / "p.json", resume=False)
    journal.start({"k": 1})
    journal.record(1, "d", np.array([np.nan, np.nan, 0.5, 0.25, np.nan]))
    doc = json.loads((tmp_path / "p.json").read_text())
    assert doc["shots"]["1"]["accuracies"] == [None, None, 0.5, 0.25]  # trailing holes left out
    again = EvalJournal(tmp_path / "p.json", resume=True)
    again.start({"k": 1})
    got = again.scored(1, "d", 5)
    np.testing.assert_array_equal(np.isnan(got), [True, True, False, False, True])
    assert again.resumed == {1: 2}
    assert np.isnan(again.scored(2, "d", 3)).all()  # nothing for another shot


def test_workers_refused_in_one_line(tmp_path, folder):  # noqa: F811
    run = make_run(tmp_path / "p", "protonets")
    code, _, stderr = invoke(["--checkpoint", str(run), "--dataset", folder, "--workers", "0"] + FAST)
    assert code == 2 and stderr.strip().splitlines() == ["error: --workers must be at least 1, got 0"]
