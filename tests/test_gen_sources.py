"""Task sources as a registry (issue 26): each source takes only its own options, every other one is refused in one
line naming it, and a new source is one module plus one registry line (shown here with a toy source)."""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_helpers import invoke_gen, one_line_error

from lasium.errors import ConfigError
from lasium.generate.job.config import GenerationConfig
from lasium.generate.sources.base import (
    CLI_METADATA,
    SourceContext,
    SourceKind,
    SourceOptions,
    WholeShards,
    cli_option,
    option_flag,
)
from lasium.generate.sources.generator import GeneratorOptions
from lasium.generate.sources.registry import TASK_SOURCES, sources_with_option
from lasium.generate.synthesis.strategies import STRATEGIES
from lasium.seeding import numpy_rng
from lasium.shards import iter_tasks, read_manifest, verify_shard_set
from lasium.tasks import TaskBatch


def cli_args(source: str, name: str) -> list[str]:
    """A valid command-line spelling of option ``name`` as declared by ``source`` (flag and, if any, value)."""
    f = next(f for f in dataclasses.fields(TASK_SOURCES[source].options) if f.name == name)
    meta = f.metadata[CLI_METADATA]
    if meta.flag and "/" in meta.flag:
        return [meta.flag.split("/")[1 if f.default else 0]]  # the spelling that differs from the default
    if meta.click.get("is_flag"):
        return [option_flag(f)]
    if meta.choices:
        return [option_flag(f), next(c for c in meta.choices if c != f.default)]
    value = {int: "7", float: "0.25"}.get(meta.click.get("type"), "x.npy")
    return [option_flag(f), value]


def foreign_options() -> list[tuple[str, str, str]]:
    """(chosen source, option, a source that declares it) for every command-line option the chosen source lacks."""
    cases = []
    for chosen, kind in TASK_SOURCES.items():
        mine = {f.name for f in dataclasses.fields(kind.options)}
        for other, other_kind in TASK_SOURCES.items():
            for f in other_kind.cli_fields():
                if f.name not in mine and not any(c[:2] == (chosen, f.name) for c in cases):
                    cases.append((chosen, f.name, other))
    return cases


@pytest.mark.parametrize("chosen, name, owner", foreign_options(), ids=lambda v: str(v))
def test_an_option_of_another_source_is_refused_in_one_line(tmp_path, chosen, name, owner):
    out = tmp_path / "o"
    args = ["--source", chosen, "--n-tasks", "4", "--out", str(out), "--quiet", *cli_args(owner, name)]
    owners = ", ".join(sources_with_option(name))
    expected = f"error: {option_flag_of(owner, name)} applies to --source {owners}; {chosen} does not use it"
    assert one_line_error(invoke_gen(*args)) == expected
    assert not out.exists()


def option_flag_of(source: str, name: str) -> str:
    return option_flag(next(f for f in dataclasses.fields(TASK_SOURCES[source].options) if f.name == name))


def test_the_matrix_covers_every_built_in_source_and_option():
    cases = foreign_options()
    assert {c[0] for c in cases} >= {"generator", "real", "umtra", "cactus"}
    # the options of LASIUM, UMTRA and CACTUs are all refused with real tasks, among them σ
    real = {c[1] for c in cases if c[0] == "real"}
    assert {"sigma", "alpha", "epsilon", "strategy", "umtra_erase", "umtra_shift", "clusters", "embedding"} <= real
    assert len(cases) >= 50


@pytest.mark.parametrize(
    "strategy, option", [(s, p) for s in STRATEGIES for p in ("sigma", "alpha") if STRATEGIES[s].parameter != p]
)
def test_a_parameter_of_another_strategy_is_refused(tmp_path, strategy, option):
    result = invoke_gen("--strategy", strategy, f"--{option}", "0.5", "--n-tasks", "4", "--out", str(tmp_path / "o"))
    users = " and ".join(s for s, st in STRATEGIES.items() if st.parameter == option)
    mine = STRATEGIES[strategy].parameter
    assert one_line_error(result) == f"error: --{option} applies to --strategy {users}; {strategy} uses --{mine}"
    with pytest.raises(ConfigError, match=f"--{option} applies to --strategy"):  # the library says the same
        GenerationConfig(4, options=GeneratorOptions(strategy=strategy, **{option: 0.5}))


def test_device_does_not_apply_to_real_episodes(tmp_path):
    result = invoke_gen("--source", "real", "--device", "cpu", "--n-tasks", "4", "--out", str(tmp_path / "o"))
    assert one_line_error(result) == (
        "error: --device applies to --source generator, umtra, cactus; real makes its tasks on the CPU"
    )


@pytest.mark.parametrize("source", list(TASK_SOURCES))
def test_every_own_option_reaches_the_source_options(tmp_path, monkeypatch, source):
    import lasium.generate.job.job as job_module

    seen: list[GenerationConfig] = []

    class Captured:
        def __init__(self, config: GenerationConfig, **kw: Any) -> None:
            seen.append(config)
            raise ConfigError("captured")

    monkeypatch.setattr(job_module, "GenerationJob", Captured)
    kind = TASK_SOURCES[source]
    args = ["--source", source, "--n-tasks", "4", "--out", str(tmp_path / "o"), "--shots", "1"]
    if source == "generator":
        args += ["--strategy", "n"]
    given = [f for f in kind.cli_fields() if not (source == "generator" and f.name in ("strategy", "alpha"))]
    for f in given:
        args += cli_args(source, f.name)
    result = invoke_gen(*args)
    assert "captured" in one_line_error(result)  # every option was accepted; the job was about to open the source
    options = seen[0].options
    assert isinstance(options, kind.options)
    for f in given:
        assert getattr(options, f.name) != f.default, f.name  # the given (non-default) value arrived
    # and the config (with its options) round-trips through JSON
    again = GenerationConfig.from_json(json.loads(seen[0].dumps()))
    assert again == seen[0]


def test_library_options_of_the_wrong_kind_are_refused():
    from lasium.generate.sources.umtra import UmtraOptions

    with pytest.raises(ConfigError, match="--source real takes RealOptions, got UmtraOptions"):
        GenerationConfig(4, source="real", options=UmtraOptions())
    with pytest.raises(ConfigError, match="--clusters applies to --source cactus; umtra does not use it"):
        GenerationConfig.build("umtra", num_tasks=4, clusters=5)
    with pytest.raises(ConfigError, match="unknown --source 'nope'"):
        GenerationConfig(4, source="nope")


def test_no_source_option_shadows_a_shared_one():
    shared = {f.name for f in dataclasses.fields(GenerationConfig)}
    for name, kind in TASK_SOURCES.items():
        assert not shared & {f.name for f in dataclasses.fields(kind.options)}, name


# -- a new source: one module (here, the classes below) and one registry line ---------------------------------------


@dataclass
class ToyOptions(SourceOptions):
    """A toy source: task i's class c is a flat image of brightness (level · 10 + c) + noise."""

    level: int = field(default=1, metadata=cli_option("Toy: the base brightness step.", type=int))

    def check(self, shape: Any) -> None:
        if not 0 <= self.level <= 20:
            raise ConfigError(f"--level must be in [0, 20], got {self.level}")


class ToySource(WholeShards):
    def __init__(self, options: ToyOptions, context: SourceContext) -> None:
        self.options, self.context = options, context

    image_shape = (8, 8, 1)

    def set_config(self) -> dict[str, Any]:
        return {"strategy": "toy", "save_latents": False, "level": self.options.level}

    def generator_record(self) -> None:
        return None

    def describe(self) -> dict[str, Any]:
        return {"kind": "toy", "method": "flat images per class"}

    def default_folder(self) -> tuple[str, str]:
        return "toyland", "toy"

    def shard_batch(self, shard_index: int, first_task: int, num_tasks: int) -> TaskBatch:
        c = self.context
        rng = numpy_rng(c.seed, "shard", shard_index)
        base = self.options.level * 10 + np.arange(c.ways, dtype=np.int64)[None, :, None, None, None, None]
        shape = (num_tasks, c.ways, c.shots + c.queries, *self.image_shape)
        images = np.clip(base + rng.integers(0, 5, shape), 0, 255).astype(np.uint8)
        metas = [{"index": first_task + t, "strategy": "toy"} for t in range(num_tasks)]
        return TaskBatch(images[:, :, : c.shots], images[:, :, c.shots :], None, metas)


TOY = SourceKind("toy", "a toy source for the registry test", ToyOptions, ToySource, uses_device=False)


@pytest.fixture
def toy_registered(monkeypatch):
    monkeypatch.setitem(TASK_SOURCES, TOY.name, TOY)  # the one registry line (register_source(TOY) in a module)


def test_a_toy_source_registered_in_one_line_generates_through_the_cli(tmp_path, monkeypatch, toy_registered):
    monkeypatch.chdir(tmp_path)
    result = invoke_gen("--source", "toy", "--level", "7", "--n-tasks", "7", "--tasks-per-shard", "3", "--workers", "0")
    assert result.exit_code == 0, result.output
    out = Path("shards/toyland/toy")  # the source names the default folder
    m = read_manifest(out)
    assert m.config["source"] == "toy" and m.task_source == "toy" and m.config["level"] == 7
    assert m.source == {"kind": "toy", "method": "flat images per class"} and m.generator is None
    assert verify_shard_set(out).ok and m.num_tasks == 7 and len(m.shards) == 3
    tasks = list(iter_tasks(out))
    assert [t.meta["index"] for t in tasks] == list(range(7)) and tasks[0].meta["strategy"] == "toy"
    assert all(70 + c <= t.support[c].min() and t.support[c].max() <= 74 + c for t in tasks for c in range(5))
    # rerun: resumes (same config), and its options are refused with other sources and vice versa
    again = invoke_gen("--source", "toy", "--level", "7", "--n-tasks", "7", "--tasks-per-shard", "3", "--workers", "0")
    assert again.exit_code == 0 and "3 already complete" in again.stderr
    umtra = invoke_gen("--source", "umtra", "--level", "7", "--n-tasks", "7")
    assert one_line_error(umtra) == "error: --level applies to --source toy; umtra does not use it"
    sigma = invoke_gen("--source", "toy", "--sigma", "0.5", "--n-tasks", "7")
    assert one_line_error(sigma) == "error: --sigma applies to --source generator; toy does not use it"
    bad = invoke_gen("--source", "toy", "--level", "99", "--n-tasks", "7")
    assert one_line_error(bad) == "error: --level must be in [0, 20], got 99"
    # the library path: the same job from a config
    from lasium.generate.job.job import run_generation

    lib = run_generation(
        GenerationConfig(
            7, "toy", ToyOptions(level=7), tasks_per_shard=3, out="lib", name="toyland-toy", workers=0, progress=False
        ),
        log=lambda m: None,
    )
    assert lib.manifest_written
    assert [e.sha256 for e in read_manifest("lib").shards] == [e.sha256 for e in m.shards]


def test_the_command_line_reads_the_sources_without_torch():
    # lasium-gen --help builds every source's options from the registry; that must not load torch or a model
    import subprocess

    code = (
        "import sys; from lasium.generate.job.cli import source_params; source_params(); "
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith(('lasium.generate.models', "
        "'lasium.generate.synthesis.synthesizer'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_strategy_descriptions_have_one_home():
    from lasium.shards.format import LASIUM_STRATEGIES

    assert {name: s.description for name, s in STRATEGIES.items()} == LASIUM_STRATEGIES
