"""What the reproduction records beside a row's accuracy: its training run's summary, its task source's manifest
record, and the machine it ran on; and what a side experiment's page records of how its points were made (the
machine, the time of the stages it reused)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from .stages import REUSED


def train_summary(run: Path) -> dict[str, Any]:
    """Steps, tasks seen and best validation accuracy of a finished run (from its checkpoints' JSON)."""
    out: dict[str, Any] = {}
    for name in ("last", "best"):
        try:
            state = json.loads((run / name / "state.json").read_text())
        except (OSError, ValueError):
            continue
        if name == "last":
            out.update(step=state.get("step"), tasks_seen=state.get("tasks_seen"), precision=state.get("precision"))
        out.update(
            best_val_accuracy=state.get("best_val_accuracy"), best_step=state.get("best_step", out.get("best_step"))
        )
    try:
        cfg = json.loads((run / "train_config.json").read_text())
        out.update(
            algo=cfg.get("algo"),
            meta_batch=cfg.get("meta_batch"),
            iterations=cfg.get("iterations"),
            augment=cfg.get("augment"),
        )
        if (cfg.get("mixture") or {}).get("sampling") == "weighted":  # a mixture row: the weights the run drew by
            out["mixture"] = cfg["mixture"]
    except (OSError, ValueError):
        pass
    return out


def task_source_summary(shards: Path) -> dict[str, Any]:
    """The parts of a UMTRA or CACTUs set's manifest ``source`` record that the page shows (method, embedding,
    clustering)."""
    try:
        source = json.loads((shards / "manifest.json").read_text()).get("source") or {}
    except (OSError, ValueError):
        return {}
    out: dict[str, Any] = {k: source[k] for k in ("kind", "method", "augmentation") if k in source}
    embedding = source.get("embedding")
    if isinstance(embedding, dict):
        generator = embedding.get("generator") or {}
        out["embedding"] = {
            "kind": embedding.get("kind"),
            "dim": embedding.get("dim"),
            **({"generator": generator.get("name")} if isinstance(generator, dict) and generator.get("name") else {}),
        }
    clustering = source.get("clustering")
    if isinstance(clustering, dict):
        out["clustering"] = {k: clustering.get(k) for k in ("clusters", "partitions", "scaling")}
    if "kept_clusters" in source:
        out["kept_clusters"] = source["kept_clusters"]
    return out


def describe_device(option: str) -> tuple[str, dict[str, Any]]:
    """(``"cuda"`` or ``"cpu"``, a JSON-ready record of the machine) for a ``--device`` option: the GPU it names
    (``cuda:N``; ``auto`` and ``cuda``: the first) where CUDA is available, else this CPU."""
    import torch

    if option != "cpu" and torch.cuda.is_available():
        index = torch.device(option).index if option.startswith("cuda") else None
        return "cuda", {
            "type": "cuda",
            "name": torch.cuda.get_device_name(index or 0),
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
        }
    from lasium.precision import cpu_has_native_bf16
    from lasium.runtime import cpu_model

    return "cpu", {
        "type": "cpu",
        "name": cpu_model(),  # says more than the architecture (rows of one page may run on different CPUs)
        "cores": os.cpu_count(),
        "native_bf16": cpu_has_native_bf16(),  # what --precision auto means there: bf16 if true, else fp32
        "torch": torch.__version__,
    }


def validation_curve(run: Path, key: str = "accuracy", split: str = "val") -> list[tuple[float, float]]:
    """(step, value) of a training run's validation records (``metrics.jsonl`` of ``lasium-train``, records with
    ``split == split``); empty when the file is missing. A last line cut short by a killed run is skipped."""
    points: list[tuple[float, float]] = []
    path = Path(run) / "metrics.jsonl"
    if not path.is_file():
        return points
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("split") == split and isinstance(record.get(key), (int, float)):
            points.append((float(record["step"]), float(record[key])))
    return points


def point_outputs(cmds: dict[str, list[str]]) -> dict[str, Any]:
    """What a validation point's stages made, by content: per shard set (``lasium-gen --out``), the sha256 of its
    shards' sha256 in its manifest's order, and the sha256 of the trained weights (``lasium-train --out``'s
    ``last/``). The same commands run on two machines that score differently say from these where the machines
    parted: already in generation, or in training (then the scoring differed in the weights it read).
    Outputs no longer in the work folder are left out."""
    import hashlib

    from lasium.checkpoint_folder import WEIGHTS_FILE
    from lasium.safe_io import file_sha256

    out: dict[str, Any] = {}
    for stage, cmd in cmds.items():
        folder = Path(cmd[cmd.index("--out") + 1]) if "--out" in cmd else None
        if folder is None:
            continue
        if stage.startswith("gen"):
            try:
                shards = json.loads((folder / "manifest.json").read_text())["shards"]
                digests = "".join(str(shard["sha256"]) for shard in shards)
            except (OSError, ValueError, KeyError, TypeError):
                continue
            out.setdefault("shards_sha256", {})[folder.name] = hashlib.sha256(digests.encode()).hexdigest()
        elif stage == "train" and (folder / "last" / WEIGHTS_FILE).is_file():
            out["weights_sha256"] = file_sha256(folder / "last" / WEIGHTS_FILE)
    return out


def reused_seconds(stages: list[dict[str, Any]]) -> float:
    """The recorded time of earlier invocations in an invocation's stages: the stages it reused (from its work folder
    or its page) and the interrupted part of the stages it continued. With this invocation's own time, the page's
    wall time is the time its points took, however many invocations made them."""
    return sum(
        (st.get("seconds") or 0.0) if st.get("note") == REUSED else (st.get("earlier_seconds") or 0.0) for st in stages
    )


def sweep_device(here: str, earlier: str | None, rows: list[dict[str, Any]]) -> str:
    """The page's device: this machine, the earlier page's where every point came from that page, or both where
    points of two machines share the page."""
    if earlier is None or earlier == here or not any(r.get("reused") for r in rows):
        return here
    if all(r.get("reused") for r in rows):
        return earlier
    return f"{here}; the points reused from the earlier page: {earlier}"


def machine(device: str) -> str:
    """The machine an experiment's stages ran on, as its page says it (:func:`describe_device`, the
    reproduction driver's record): the GPU's name, else the CPU's model and cores (the same commands and seeds on two
    CPU models can train to different weights: their bf16 and fp32 kernels round differently, so a page names its
    CPU)."""
    kind, record = describe_device(device)
    return record["name"] if kind == "cuda" else f"{platform.machine()} CPU ({record['name']}), {record['cores']} cores"
