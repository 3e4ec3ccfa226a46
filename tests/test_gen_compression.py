"""lasium-gen and shard sets to share: --compression gzip (.tar.gz, reproducible), the set's card at the end of
a job."""

from __future__ import annotations

import hashlib
from pathlib import Path

import gen_tiny  # noqa: E402
import numpy as np
from click.testing import CliRunner

from lasium.generate.job.config import GenerationConfig  # noqa: E402
from lasium.generate.job.job import GenerationJob  # noqa: E402
from lasium.runtime import RankInfo  # noqa: E402
from lasium.shards import iter_tasks, read_manifest, verify_shard_set  # noqa: E402


def run(out: Path, **kw):
    kw.setdefault("strategy", "ro")
    kw.setdefault("num_tasks", 25)
    kw.setdefault("tasks_per_shard", 10)
    kw.setdefault("workers", 0)
    kw.setdefault("device", "cpu")
    kw.setdefault("decode_tasks", 5)
    kw.setdefault("anchor_chunk", 1024)
    cfg = GenerationConfig.build(out=str(out), progress=False, **kw)
    return GenerationJob(cfg, model=gen_tiny.tiny_gan(), rank=RankInfo(), log=lambda m: None).run()


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("s-*"))}


def test_gzip_sets_are_byte_identical_for_a_seed_and_hold_the_plain_sets_tasks(tmp_path):
    run(tmp_path / "a", compression="gzip", name="s")
    run(tmp_path / "b", compression="gzip", name="s", workers=2, in_flight=3)
    a = digests(tmp_path / "a")
    assert sorted(a) == [f"s-00000{i}.tar.gz{x}" for i in range(3) for x in ("", ".json")]
    assert a == digests(tmp_path / "b")
    m = read_manifest(tmp_path / "a")
    assert m.config["compression"] == "gzip" and m.config["format"] == "wds" and m.compression == "gzip"
    assert verify_shard_set(tmp_path / "a").ok
    run(tmp_path / "plain", name="s")  # the default for wds: plain .tar
    plain = read_manifest(tmp_path / "plain")
    # plain .tar (the default) is what a config without 'compression' means: sets written before the option resume
    assert "compression" not in plain.config and plain.compression == "none" and plain.shards[0].file == "s-000000.tar"
    for x, y in zip(iter_tasks(tmp_path / "a"), iter_tasks(tmp_path / "plain")):
        assert np.array_equal(x.support, y.support) and np.array_equal(x.query, y.query)
    assert sum(e.bytes for e in m.shards) < sum(e.bytes for e in plain.shards)


def test_switching_compression_is_a_different_config(tmp_path):
    from lasium.errors import ConfigError

    run(tmp_path / "x", name="s")
    try:
        run(tmp_path / "x", name="s", compression="gzip")
    except ConfigError as exc:
        assert "config.compression None → 'gzip'" in str(exc)
    else:
        raise AssertionError("a gzip run over a plain set must be refused")
    run(tmp_path / "x", name="s", compression="gzip", overwrite=True)
    assert sorted(p.name for p in (tmp_path / "x").glob("s-*")) == [
        f"s-00000{i}.tar.gz{x}" for i in range(3) for x in ("", ".json")
    ]


def test_the_job_writes_the_sets_card(tmp_path):
    run(tmp_path / "c", compression="gzip", name="s")
    readme = (tmp_path / "c" / "README.md").read_text()
    sha = hashlib.sha256((tmp_path / "c" / "manifest.json").read_bytes()).hexdigest()
    assert f"`manifest.json` sha256: `{sha}`" in readme and "| tasks | 25 (5-way" in readme
    assert (tmp_path / "c" / "preview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    partial = run(tmp_path / "p", name="s", shard_range="0:1")  # no manifest yet: no card either
    assert not partial.manifest_written and not (tmp_path / "p" / "README.md").exists()


def test_hdf5_without_filter_is_recorded(tmp_path):
    run(tmp_path / "h", name="s", container="hdf5", compression="none", num_tasks=5)
    m = read_manifest(tmp_path / "h")
    assert m.config["compression"] == "none" and m.compression == "none" and verify_shard_set(tmp_path / "h").ok
    import h5py

    with h5py.File(tmp_path / "h" / "s-000000.h5", "r") as f:
        assert f["support"].compression is None


def test_cli_compression_option(tmp_path, monkeypatch):
    import lasium.runtime
    from lasium.generate.job.cli import main

    kept = []  # lasium-gen keeps freed decode buffers for reuse (lasium.runtime.keep_freed_memory)
    monkeypatch.setattr(lasium.runtime, "keep_freed_memory", lambda: kept.append(True) or True)
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        main,
        [
            "--strategy",
            "ro",
            "--n-tasks",
            "4",
            "--tasks-per-shard",
            "2",
            "--generator",
            "gen_tiny:build",
            "--device",
            "cpu",
            "--workers",
            "0",
            "--decode-tasks",
            "2",
            "--compression",
            "gzip",
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    assert kept == [True]
    assert sorted(p.name for p in out.glob("cli-*")) == [
        "cli-000000.tar.gz",
        "cli-000000.tar.gz.json",
        "cli-000001.tar.gz",
        "cli-000001.tar.gz.json",
    ]
    bad = CliRunner().invoke(
        main, ["--strategy", "ro", "--n-tasks", "4", "--compression", "zstd", "--out", str(tmp_path / "bad")]
    )
    assert bad.exit_code == 2 and "zstd" in bad.output
