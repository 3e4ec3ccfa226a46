"""Which generator made a row's tasks: the record every results row keeps of it (kind, the spec ``lasium-gen
--generator`` was given, and the sha256 of its weights), and whether a row from a results page was made by the
generator planned now.

A row's commands name its generator by spec (``--generator omniglot-gan``, or a folder), and a spec outlives its
weights: a bundled model can be replaced by a better fit, and ``lasium-fit --resume`` continues a fit in its own
folder. The weights' sha256 is what tells two generators apart, so a row is reused only when the generator it
recorded is the one that would make its tasks now (:func:`same_generator`).

The record comes from the model as ``lasium.generate.load_generator`` loads it (``describe()``, the record
``lasium-gen`` writes into every shard manifest: sha256 of ``model.safetensors`` for bundled models and
``lasium-fit`` folders), and once a row's shard set exists, from that set's manifest (what made those very tasks).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RECORD_KEYS = ("kind", "name", "weights_sha256")  # what a row keeps of a generator's own description

# Rows written before rows recorded their generator name it only by spec, in their generation command. The bundled
# omniglot-gan's weights were committed once (55b493b, 2026-11-26 06:31 UTC) and are unchanged in git since then, and
# the runs of the pages written before this record existed started later (the earliest, results/cpu-reduced, at
# 07:11 UTC that day): a row of theirs whose generation says --generator omniglot-gan was made by these weights.
LEGACY_BUNDLED: dict[str, dict[str, Any]] = {
    "omniglot-gan": {
        "kind": "gan",
        "name": "omniglot-gan",
        "weights_sha256": "c1e709041b4b82daa4511220e2b512d63c73dd4a9f42b5449100f9470fcb3a6a",
    }
}


def describe_generator(spec: str) -> dict[str, Any]:
    """``{"spec", "kind", "name", "weights_sha256"}`` of the generator ``spec`` names (a bundled name or a folder),
    plus ``epochs_done`` when its config records it; loads it on the CPU (the bundled models take a second).

    Raises what ``load_generator`` raises for a spec that names no generator (a one-line
    :class:`~lasium.errors.CheckpointError` or :class:`~lasium.errors.ConfigError`)."""
    from lasium.generate import load_generator

    described = load_generator(spec, device="cpu").describe()
    record: dict[str, Any] = {"spec": spec, **{k: described.get(k) for k in RECORD_KEYS}}
    config = Path(spec) / "config.json"
    if config.is_file():  # a lasium-fit folder: how far its fit got (a bundled name is described by its card)
        try:
            epochs = json.loads(config.read_text()).get("epochs_done")
        except ValueError:
            epochs = None
        if isinstance(epochs, int):
            record["epochs_done"] = epochs
    return record


def check_vae(spec: str) -> dict[str, Any]:
    """:func:`describe_generator` of ``--vae``, refusing a generator that is not a VAE (one line, exit 2)."""
    from lasium.errors import ConfigError

    record = describe_generator(spec)
    if record.get("kind") != "vae":
        raise ConfigError(
            f"--vae {spec} is a {str(record.get('kind')).upper()}, not a VAE; give omniglot-vae or a lasium-fit "
            "--model vae output folder"
        )
    return record


def manifest_generator(shards: Path) -> dict[str, Any] | None:
    """The generator record of a shard set's manifest (``kind``, ``name``, ``weights_sha256``), or None when the set
    has no readable manifest or records no generator (real episodes, UMTRA, CACTUs)."""
    try:
        generator = json.loads((Path(shards) / "manifest.json").read_text()).get("generator")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(generator, dict) or not isinstance(generator.get("weights_sha256"), str):
        return None
    return {k: generator.get(k) for k in RECORD_KEYS}


def legacy_generator(row: dict[str, Any]) -> dict[str, Any] | None:
    """The generator of a results row written before rows recorded one (see :data:`LEGACY_BUNDLED`): the bundled
    weights its generation commands name, marked ``legacy``; None when they name another generator or none."""
    import shlex

    specs = set()
    for stage, command in (row.get("commands") or {}).items():
        if not stage.startswith("gen") or not isinstance(command, str):
            continue
        words = shlex.split(command)
        if "--generator" in words[:-1]:
            specs.add(words[words.index("--generator") + 1])
    if len(specs) != 1 or next(iter(specs)) not in LEGACY_BUNDLED:
        return None
    spec = specs.pop()
    return {"spec": spec, **LEGACY_BUNDLED[spec], "legacy": True}


def same_generator(recorded: dict[str, Any] | None, planned: dict[str, Any] | None) -> bool:
    """Whether a row that recorded ``recorded`` was made by ``planned``: the same weights (sha256). Where either side
    does not know the weights (a row written before rows named their generator, a generator that cannot be loaded
    yet), the row is judged by its commands alone, as before."""
    if not recorded or not recorded.get("weights_sha256") or not planned or not planned.get("weights_sha256"):
        return True
    return recorded.get("weights_sha256") == planned.get("weights_sha256")


def short(record: dict[str, Any] | None) -> str:
    """How the page names a generator: ``omniglot-vae (VAE, sha256 1a2b3c4d5e6f)``; "not recorded" without one."""
    if not record or not record.get("weights_sha256"):
        return "not recorded"
    kind = str(record.get("kind") or "?").upper()
    name = record.get("spec") or record.get("name") or "?"
    epochs = f", {record['epochs_done']} epochs" if isinstance(record.get("epochs_done"), int) else ""
    legacy = "; from the row's command: the bundled weights of its time" if record.get("legacy") else ""
    return f"`{name}` ({kind}{epochs}, sha256 `{record['weights_sha256'][:12]}`{legacy})"
