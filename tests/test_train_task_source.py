"""lasium-train reads which task source made its shards from what the sets record (issue 26), never from a path or
from whether a manifest exists, and resolves each --shards value once (a remote manifest is one GET)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fault_server import serve
from shards_helpers import make_header, write_set

from lasium.shards import write_manifest, write_shard
from lasium.shards.format import recorded_task_source
from lasium.train.augment import DEFAULT_FOR_GENERATED, resolve_preset
from lasium.train.mixture import open_mixture
from lasium.train.shard_access import open_shard_set
from lasium.train.synthetic import synthetic_tasks


def write_recorded(folder: Path, *, manifest: bool = True, **config) -> Path:
    """A small set whose config records ``config`` (e.g. source="real"), with or without its manifest."""
    header = make_header(num_tasks=4, tasks_per_shard=2, **config)
    for key in [k for k, v in config.items() if v is None]:
        del header["config"][key]
    batch = synthetic_tasks(4, 3, 1, 2, (4, 4, 1), "blobs", 0)
    entries = []
    for s in range(2):
        part = type(batch)(batch.support[2 * s : 2 * s + 2], batch.query[2 * s : 2 * s + 2], None, [])
        entries.append(write_shard(folder, "set", s, 2 * s, part, "wds", header))
    if manifest:
        write_manifest(folder, header, entries)
    return folder


@pytest.mark.parametrize(
    "config, kind",
    [
        ({"source": "generator"}, "generator"),
        ({"source": "real", "strategy": "real"}, "real"),
        ({"source": "umtra", "strategy": "umtra"}, "umtra"),
        ({"source": "cactus", "strategy": "cactus"}, "cactus"),
        ({"source": None, "strategy": "ro"}, "generator"),  # written without "source": read from the strategy
        ({"source": None, "strategy": "real"}, "real"),
        ({"source": None, "strategy": "synthetic-blobs"}, None),
        ({"source": None, "strategy": None}, None),
    ],
)
def test_the_recorded_kind_and_sets_written_before_it_was_recorded(config, kind):
    c = {"ways": 5, "source": "generator", "strategy": "n", **config}
    assert recorded_task_source({k: v for k, v in c.items() if v is not None}) == kind


@pytest.mark.parametrize("with_manifest", [True, False])
@pytest.mark.parametrize("source, generated", [("generator", True), ("real", False), ("cactus", False)])
def test_augment_auto_follows_the_recorded_source_with_or_without_a_manifest(
    tmp_path, source, generated, with_manifest
):
    folder = write_recorded(tmp_path / source, manifest=with_manifest, source=source)
    shard_set = open_shard_set(str(folder))  # without a manifest: the shards' sidecars record it
    assert shard_set.task_sources == {source} and shard_set.generated is generated and not shard_set.notes
    expected = DEFAULT_FOR_GENERATED if generated else "none"
    assert resolve_preset("auto", generated=shard_set.generated) == expected


def test_a_pipe_list_without_manifest_gets_none_and_a_notice(tmp_path):
    folder = write_recorded(tmp_path / "gen", manifest=False, source="generator")
    pipe = f"pipe:cat {folder}/set-{{000000..000001}}.tar"
    shard_set = open_shard_set(pipe)
    assert shard_set.task_sources == {None} and not shard_set.generated
    # one notice on the task source, one warning that nothing vouches for these shards' bytes
    assert len(shard_set.notes) == 2 and "--augment auto treats them as real images (none)" in shard_set.notes[1]
    assert shard_set.notes[0].startswith("warning: 2 shard(s) of pipe:cat ")
    # mixed with a generated set, the whole run is not known to be generated either
    both = open_shard_set([pipe, str(write_recorded(tmp_path / "g2", source="generator"))])
    assert both.task_sources == {None, "generator"} and not both.generated


def test_a_real_image_set_is_not_generated_wherever_it_lives(tmp_path):
    # a path that looks like a LASIUM set's (shards/omniglot/ro) does not make it one
    folder = write_recorded(tmp_path / "shards" / "omniglot" / "ro", source="real", strategy="real")
    assert not open_shard_set(str(folder)).generated


def test_a_remote_manifest_is_fetched_once(tmp_path):
    root = tmp_path / "www"
    write_set(root / "set", num_tasks=6, tasks_per_shard=3)
    with serve(root) as server:
        url = f"{server.url}/set/manifest.json"
        shard_set, mixture = open_mixture([url])
        assert len(shard_set.urls) == 2 and mixture.record()
        assert server.requests["set/manifest.json"] == 1  # was 2: once for the shards, once more for the mixture
        _, weighted = open_mixture([f"{url}:1"])
        assert server.requests["set/manifest.json"] == 2 and weighted.record()
    shutil.rmtree(root)
