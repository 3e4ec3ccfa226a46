"""lasium.safe_io: atomic JSON/safetensors writes, checked reads, optimizer state round trips."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from lasium import safe_io
from lasium.errors import CheckpointError
from lasium.optimizer_state import optimizer_tensors, restore_optimizer
from lasium.safe_io import (
    read_json_document,
    read_safetensors,
    write_json_atomic,
    write_safetensors_atomic,
)


def test_json_is_sorted_indented_and_newline_terminated(tmp_path):
    path = write_json_atomic(tmp_path / "sub" / "a.json", {"b": 1, "a": [1, 2]})
    assert path.read_text() == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'
    write_json_atomic(path, {"b": 1, "a": 2}, sort_keys=False)
    assert list(json.loads(path.read_text())) == ["b", "a"]
    assert sorted(os.listdir(path.parent)) == ["a.json"]


def test_json_failure_keeps_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    write_json_atomic(path, {"a": 1})
    with pytest.raises(TypeError):  # not serialisable: fails before any file is created
        write_json_atomic(path, {"a": object()})

    def broken_replace(src, dst):
        raise OSError(5, "simulated I/O error")

    monkeypatch.setattr(safe_io.os, "replace", broken_replace)
    with pytest.raises(OSError, match="simulated"):
        write_json_atomic(path, {"a": 2})
    with pytest.raises(OSError, match="simulated"):
        write_safetensors_atomic(tmp_path / "w.safetensors", {"x": torch.zeros(2)})
    assert json.loads(path.read_text()) == {"a": 1}
    assert sorted(os.listdir(tmp_path)) == ["r.json"]


def test_safetensors_bytes_do_not_depend_on_hash_order(tmp_path):
    """safetensors orders its header from a hash map; ours sorts it, so equal checkpoints have equal digests."""
    from safetensors.torch import load_file

    tensors = {f"layer{i}.weight": torch.full((3, i + 1), float(i)) for i in range(8)}
    metadata = {k: str(i) for i, k in enumerate(["format", "epoch", "algo", "seed", "step", "name"])}
    # (safetensors 0.8 alone gives several byte strings for these 20 writes: its header is a hash map)
    digests = set()
    for i in range(20):
        path = write_safetensors_atomic(tmp_path / f"w{i}.safetensors", tensors, metadata)
        digests.add(path.read_bytes())
    assert len(digests) == 1, "the same tensors and metadata gave different bytes"
    loaded, meta = read_safetensors(tmp_path / "w0.safetensors")
    assert meta == metadata and all(torch.equal(loaded[k], v) for k, v in tensors.items())
    assert all(torch.equal(load_file(tmp_path / "w0.safetensors")[k], v) for k, v in tensors.items())  # stock reader


def test_safetensors_round_trip_and_corrupt_files(tmp_path):
    path = tmp_path / "w.safetensors"
    tensors = {
        "a": torch.arange(6.0).reshape(2, 3).t(),
        "b": torch.tensor([1, 2], dtype=torch.int64),
    }  # a: not contiguous
    write_safetensors_atomic(path, tensors, {"epoch": "3"})
    loaded, meta = read_safetensors(path)
    assert meta == {"epoch": "3"} and set(loaded) == {"a", "b"}
    assert torch.equal(loaded["a"], tensors["a"]) and torch.equal(loaded["b"], tensors["b"])

    data = path.read_bytes()
    for name, content in [("truncated", data[: len(data) // 2]), ("garbage", b"\xff" * 64), ("empty", b"")]:
        bad = tmp_path / f"{name}.safetensors"
        bad.write_bytes(content)
        with pytest.raises(CheckpointError, match="not a readable safetensors file.*corrupt") as exc:
            read_safetensors(bad)
        assert "\n" not in str(exc.value)
    with pytest.raises(CheckpointError, match="missing"):
        read_safetensors(tmp_path / "absent.safetensors")


def _document(tmp_path, data) -> dict:
    path = tmp_path / "config.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return read_json_document(
        path, format="lasium-test", max_version=2, what="lasium test config", missing_hint="is it a test folder?"
    )


def test_json_document_checks(tmp_path):
    assert _document(tmp_path, {"format": "lasium-test", "format_version": 2, "x": 1})["x"] == 1
    assert _document(tmp_path, {"format": "lasium-test"})["format"] == "lasium-test"  # no version: the first one
    with pytest.raises(CheckpointError, match="format version 3.*upgrade lasium"):
        _document(tmp_path, {"format": "lasium-test", "format_version": 3})
    with pytest.raises(CheckpointError, match="not a lasium test config"):
        _document(tmp_path, {"format": "something-else"})
    with pytest.raises(CheckpointError, match="not a lasium test config"):
        _document(tmp_path, [1, 2])
    with pytest.raises(CheckpointError, match="invalid format_version"):
        _document(tmp_path, {"format": "lasium-test", "format_version": "two"})
    with pytest.raises(CheckpointError, match="not valid JSON.*corrupt") as exc:
        _document(tmp_path, "{not json")
    assert "\n" not in str(exc.value)
    with pytest.raises(CheckpointError, match="missing; is it a test folder"):
        read_json_document(
            tmp_path / "nope.json", format="lasium-test", max_version=2, what="x", missing_hint="is it a test folder?"
        )


def _trained(seed: int, **adam) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, betas=(0.5, 0.9), **adam)
    for _ in range(3):
        optimizer.zero_grad()
        model(torch.randn(8, 4)).pow(2).mean().backward()
        optimizer.step()
    return model, optimizer


def _step(model: nn.Module, optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    optimizer.zero_grad()
    model(torch.ones(2, 4)).sum().backward()
    optimizer.step()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("prefix", ["", "optimizer.generator"])
def test_optimizer_round_trip_through_files(tmp_path, prefix):
    model, optimizer = _trained(0)
    tensors, groups = optimizer_tensors(optimizer, prefix)
    head = f"{prefix}.state." if prefix else "state."
    # The key layout is part of the on-disk checkpoint formats (lasium-fit: prefixed, lasium-train: bare).
    assert sorted(tensors)[:3] == [f"{head}0.exp_avg", f"{head}0.exp_avg_sq", f"{head}0.step"]
    other = {"discriminator.weight": torch.ones(2)}  # a state file also holds other modules' weights
    write_safetensors_atomic(tmp_path / "state.safetensors", {**tensors, **other})
    write_json_atomic(tmp_path / "state.json", {"groups": groups})

    copy, restored = _trained(1)  # other weights and moments, same structure
    copy.load_state_dict(model.state_dict())
    loaded, _ = read_safetensors(tmp_path / "state.safetensors")
    restore_optimizer(restored, loaded, json.loads((tmp_path / "state.json").read_text())["groups"], prefix)
    assert restored.param_groups[0]["betas"] == (0.5, 0.9)
    # Resuming continues exactly like the uninterrupted run.
    for a, b in zip(_step(model, optimizer), _step(copy, restored)):
        assert torch.equal(a, b)


def test_restore_refuses_a_state_that_does_not_fit():
    _, optimizer = _trained(0)
    tensors, groups = optimizer_tensors(optimizer, "optimizer.g")
    other = torch.optim.Adam(nn.Linear(4, 3).parameters(), lr=1e-2)  # 2 parameters instead of 4
    with pytest.raises(CheckpointError, match="does not fit the optimizer") as exc:
        restore_optimizer(other, tensors, groups, "optimizer.g")
    assert "\n" not in str(exc.value)
    with pytest.raises(CheckpointError, match="0 parameter groups, expected 1"):
        restore_optimizer(optimizer, tensors, [], "optimizer.g")
    with pytest.raises(CheckpointError, match="malformed key"):
        restore_optimizer(optimizer, {"state.x.exp_avg": torch.zeros(1)}, groups)


def test_restore_keeps_the_current_runtime_flags():
    _, saved = _trained(0, foreach=True)
    tensors, groups = optimizer_tensors(saved)
    assert json.loads(json.dumps(groups)) == groups  # JSON-ready as they are
    _, current = _trained(1, foreach=False)
    restore_optimizer(current, tensors, groups)
    assert current.param_groups[0]["foreach"] is False and current.param_groups[0]["lr"] == 1e-2


def test_importing_safe_io_does_not_import_torch():
    """The torch-free shard tools share the atomic helpers; importing them must stay cheap."""
    code = "import sys, lasium.safe_io, lasium.shards.atomic; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# ----------------------------------------------------------------------------- what killed writers leave


def _killed_mid_write(call: str) -> int:
    """Run ``safe_io.<call>`` with a ``fill`` that writes half and SIGKILLs its own process; the writer's pid."""
    script = (
        "import os, signal\nfrom lasium import safe_io\n"
        "def fill(tmp):\n    (tmp / 'f' if tmp.is_dir() else tmp).write_text('half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        f"safe_io.{call}\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    assert proc.wait(60) == -9
    return proc.pid


def test_a_killed_file_write_leaves_a_temporary_that_names_its_writer(tmp_path):
    pid = _killed_mid_write(f"replace_atomically({str(tmp_path / 'a.json')!r}, fill)")
    (left,) = tmp_path.iterdir()
    assert left.name.startswith(f".a.json.{pid}-") and left.name.endswith(".tmp")
    live = tmp_path / f".b.json.{os.getppid()}-abcd1234.tmp"  # a writer still at work (this test's parent)
    live.write_text("busy")
    own = tmp_path / f".c.json.{os.getpid()}-abcd1234.tmp"
    own.write_text("busy")
    assert safe_io.remove_stale_temporaries(tmp_path) == [left]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, own.name])


def test_a_killed_folder_write_is_removed_or_put_back(tmp_path):
    """.<name>.tmp-PID of a dead writer goes; a writer killed between its two renames left the previous folder
    aside (.<name>.old-PID): the complete new folder is moved into place, or else the previous one is put back."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(60)
    dead, alive = proc.pid, os.getppid()

    def folder(path, text):
        path.mkdir()
        (path / "state.json").write_text(text)
        return path

    run = tmp_path / "run"
    run.mkdir()
    folder(run / "step-0000001", "1")
    folder(run / f".step-0000002.tmp-{dead}", "partial")  # killed mid-fill
    folder(run / f".last.old-{dead}", "old")  # killed after moving last/ aside, before moving the new one in
    folder(run / f".last.tmp-{dead}", "new")
    folder(run / f".best.old-{dead}", "old best")  # killed after moving best/ aside; no new folder
    folder(run / f".step-0000003.tmp-{alive}", "busy")  # a live writer's: never touched
    (run / "sub").mkdir()
    (run / "sub" / f".x.json.{dead}-abcd1234.tmp").write_text("{")
    safe_io.remove_stale_temporaries(run)
    assert sorted(p.name for p in run.iterdir()) == sorted(
        ["step-0000001", "last", "best", f".step-0000003.tmp-{alive}", "sub"]
    )
    assert (run / "last" / "state.json").read_text() == "new" and (
        run / "best" / "state.json"
    ).read_text() == "old best"
    assert list((run / "sub").iterdir()) == []
    pid = _killed_mid_write(f"replace_folder_atomically({str(run / 'step-0000004')!r}, fill)")  # a real kill
    assert (run / f".step-0000004.tmp-{pid}" / "f").is_file()
    assert safe_io.remove_stale_temporaries(run) == [run / f".step-0000004.tmp-{pid}"]


def test_an_interrupt_between_the_two_renames_puts_the_previous_folder_back(tmp_path, monkeypatch):
    target = tmp_path / "last"
    safe_io.replace_folder_atomically(target, lambda tmp: (tmp / "state.json").write_text("old"))
    real_replace = os.replace
    calls = []

    def interrupted(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # the new folder's rename: Ctrl-C or SIGTERM lands here
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(safe_io.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        safe_io.replace_folder_atomically(target, lambda tmp: (tmp / "state.json").write_text("new"))
    monkeypatch.setattr(safe_io.os, "replace", real_replace)
    assert [p.name for p in tmp_path.iterdir()] == ["last"] and (target / "state.json").read_text() == "old"
