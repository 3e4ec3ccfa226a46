"""The tables of the Omniglot reproduction page, each from the rows of a results dict (:mod:`lasium.repro.pipeline`):
ours beside the published figures, the targets and each row's verdict, the other task sources, the ablation, the
stages. Everything here only formats: no figure is computed or assumed."""

from __future__ import annotations

from typing import Any

from .generators import legacy_generator, short
from .published import OMNIGLOT_5WAY, PAPER_VAE_SOURCE, TARGETS, paper_vae_cell, published_for


def _cell(evaluation: dict[str, Any] | None, shots: int) -> str:
    r = (evaluation or {}).get(str(shots))
    if not r:
        return "–"
    return f"{r['accuracy_pct']:.2f} ± {r['ci95_pct']:.2f}"


def _partial(row: dict[str, Any], protocol_tasks: int | None) -> str:
    """ ", first N of the M tasks" for a row that scored only part of the protocol's tasks, else ""."""
    scored = tasks_scored(row)
    if scored is None or protocol_tasks is None or scored == protocol_tasks:
        return ""
    return f", first {scored} of the {protocol_tasks} tasks"


def tasks_scored(row: dict[str, Any]) -> int | None:
    counts = {int(r["tasks"]) for r in (row.get("eval") or {}).values() if "tasks" in r}
    return counts.pop() if len(counts) == 1 else None


def accuracy_table(rows: list[dict[str, Any]], protocol_tasks: int | None = None) -> list[str]:
    """Published rows (with † marks) then ours, in one table (other task sources and ablation steps have their own)."""
    out = ["| method | 1-shot | 5-shot | source |", "|---|---|---|---|"]
    for p in OMNIGLOT_5WAY:
        out.append(f"| {p.label} | {p.one_shot:.2f} | {p.five_shot:.2f} | published |")
    for row in rows:
        if row.get("family") in ("ablation", "other", "vae", "other-gan"):
            continue  # in the ablation, other-sources, VAE and other-GAN tables
        status = row.get("status", "")
        source = "this run" if status == "ok" else f"this run ({status})"
        source += _partial(row, protocol_tasks)
        out.append(f"| **{row['label']}** | {_cell(row.get('eval'), 1)} | {_cell(row.get('eval'), 5)} | {source} |")
    return out


def target_lines(
    rows: list[dict[str, Any]],
    targets: dict[str, dict[int, float]] = TARGETS,
    families: tuple[str, ...] = ("lasium",),
    subject: str = "LASIUM",
) -> list[str]:
    """For MAML and ProtoNets: our best row of ``families`` per K_tr against ``targets`` (default: the paper's best,
    judged on the LASIUM-GAN rows)."""
    lines = []
    for algo, target in targets.items():
        ours = [r for r in rows if r.get("family") in families and _learner(r, targets) == algo and r.get("eval")]
        for shots, value in target.items():
            scored = [(r["eval"][str(shots)]["accuracy_pct"], r["label"]) for r in ours if str(shots) in r["eval"]]
            name = "MAML" if algo == "maml" else "ProtoNets"
            if not scored:
                lines.append(f"- {subject} with {name}, {shots}-shot: target ≥ {value:.2f}; no result in this run")
                continue
            best, label = max(scored)
            verdict = "met" if best >= value else f"not met ({best - value:+.2f} points)"
            lines.append(
                f"- {subject} with {name}, {shots}-shot: target ≥ {value:.2f}; ours {best:.2f} ({label}): **{verdict}**"
            )
    return lines


def _learner(row: dict[str, Any], targets: dict[str, dict[int, float]]) -> str | None:
    """The key of ``targets`` a row's algorithm is judged by (``fomaml`` counts as ``maml``), else None."""
    return next((a for a in targets if row.get("algo", "").endswith(a)), None)


def every_row_lines(rows: list[dict[str, Any]], targets: dict[str, dict[int, float]] = TARGETS) -> list[str]:
    """Each scored LASIUM row against the paper's best cell for its learner, then one verdict for them all.

    The paper's best cell bounds each of its own cells, so a row above it is above the paper's cell for that row.
    """
    lines, failing, unscored = [], [], []
    for r in (r for r in rows if r.get("family") == "lasium"):
        target = targets.get(_learner(r, targets) or "", {})
        cells = [((r.get("eval") or {}).get(str(s)), t) for s, t in target.items()]
        if not cells or not all(c for c, _ in cells):
            unscored.append(r["label"])
            continue
        pairs = [(c["accuracy_pct"], t) for c, t in cells if c]  # (ours, paper) per K_tr (every cell scored)
        beats = all(ours > t for ours, t in pairs)
        if not beats:
            failing.append(r["label"])
        lines.append(
            f"- {r['label']}: {' / '.join(f'{ours:.2f}' for ours, _ in pairs)} vs "
            f"{' / '.join(f'{t:.2f}' for _, t in pairs)} ({' / '.join(f'{ours - t:+.2f}' for ours, t in pairs)}): "
            f"**{'above' if beats else 'not above'}**"
        )
    if not lines:
        return []
    verdict = (
        f"**every one of the {len(lines)} scored LASIUM rows is above it**"
        if not failing
        else f"**{len(failing)} of the {len(lines)} scored LASIUM rows are not above it** ({', '.join(failing)})"
    )
    if unscored:
        verdict += f"; not scored yet: {', '.join(unscored)}"
    return [*lines, "", f"Each LASIUM row against the paper's best cell for its learner (1-shot / 5-shot): {verdict}."]


def _augment(row: dict[str, Any]) -> str:
    """The augmentation a row trained with (what auto resolved to, as the run recorded it), else its setting."""
    return (row.get("train") or {}).get("augment") or (row.get("settings") or {}).get("augment", "?")


def _count(value: Any) -> str:
    """A count with thousands separators; ``?`` when the record does not hold it."""
    return f"{value:,}" if isinstance(value, int) else "?"


def ablation_table(rows: list[dict[str, Any]]) -> list[str]:
    """LASIUM-N + ProtoNets, one ingredient added per line; the main ``protonets-n`` row (bf16) is the last step."""
    steps = [r for r in rows if r.get("family") == "ablation"]
    if not steps:
        return []
    final = next((r for r in rows if r.get("key") == "protonets-n"), None)
    if final is not None:
        from lasium.train import DEFAULT_FOR_GENERATED

        added = []
        augment = _augment(final).replace("auto", DEFAULT_FOR_GENERATED)  # what auto means for generated tasks
        if augment != _augment(steps[-1]):  # no "+ best augmentation" row ran: the main row is that step
            added.append(f"+ best augmentation ({augment})")
        precision = (final.get("train") or {}).get("precision")  # what auto resolved to; None: not run yet
        if precision == "bf16" or (final.get("device") or {}).get("native_bf16") is True:
            added.append("+ bf16 autocast (training and evaluation)")
        elif precision == "fp32":
            added.append("+ --precision auto, fp32 on its CPU (no native bf16)")
        else:
            added.append("+ --precision auto (bf16 autocast where the device has it natively)")
        steps.append({**final, "note": ", ".join(added) + ": this run's LASIUM-N + ProtoNets row"})
    out = [
        "| step | tasks generated | iterations × meta-batch | augment | σ | precision | 1-shot | 5-shot | Δ 1-shot |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    previous = None
    for r in steps:
        st = r.get("settings") or {}
        one = ((r.get("eval") or {}).get("1") or {}).get("accuracy_pct")
        delta = f"{one - previous:+.2f}" if one is not None and previous is not None else ""
        sigma = st.get("param")
        trained = r.get("train") or {}  # what auto resolved to, as the run recorded it
        augment = _augment(r)
        precision = trained.get("precision") or st.get("precision") or "auto"
        out.append(
            f"| {r.get('note', r['label'])} | {_count(st.get('tasks'))} | "
            f"{_count(st.get('iterations'))} × {st.get('meta_batch', '?')} | "
            f"{augment} | {'preset' if sigma is None else format(sigma, 'g')} | {precision} | "
            f"{_cell(r.get('eval'), 1)} | {_cell(r.get('eval'), 5)} | {delta} |"
        )
        previous = one if one is not None else previous
    return out


def _source_setup(row: dict[str, Any]) -> str:
    """How the row's tasks were made: the mixture's weights, or what the set's manifest says of its source."""
    settings = row.get("settings") or {}
    mixture = settings.get("mixture")
    if mixture:
        return " + ".join(f"`{m['shards']}` × {m['weight']:g}" for m in mixture) + " (weighted draw per task)"
    info = row.get("task_source") or {}
    embedding, clustering = info.get("embedding") or {}, info.get("clustering") or {}
    parts = []
    if embedding:
        parts.append(
            f"{embedding.get('kind', '?')}"
            + (f" of `{embedding['generator']}`" if embedding.get("generator") else "")
            + (f", {embedding['dim']}-d" if embedding.get("dim") else "")
        )
    if clustering:
        parts.append(f"k = {clustering.get('clusters')}, P = {clustering.get('partitions')}")
    augmentation = info.get("augmentation")
    if isinstance(augmentation, dict):
        scalars = {k: v for k, v in augmentation.items() if isinstance(v, (int, float, str))}
        parts.append("queries: " + ", ".join(f"{k} {v}" for k, v in scalars.items()))
    return "; ".join(parts) or "`lasium-gen` defaults"


def other_sources_table(rows: list[dict[str, Any]], protocol_tasks: int | None = None) -> list[str]:
    """UMTRA, CACTUs and mixture rows of ours beside the published figure of the same source and learner."""
    others = [r for r in rows if r.get("family") == "other"]
    if not others:
        return []
    out = [
        "| method | 1-shot | 5-shot | published 1-shot | published 5-shot | published as | tasks | augment | status |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in others:
        published = published_for(r.get("source", ""), r.get("algo", ""))
        pub = (
            [f"{published.one_shot:.2f}", f"{published.five_shot:.2f}", f"{published.method} ({published.citation})"]
            if published
            else ["–", "–", "no published figure"]
        )
        settings = r.get("settings") or {}
        tasks = settings.get("tasks")
        count = f"{tasks:,}" + (" per set" if settings.get("mixture") else "") if isinstance(tasks, int) else "?"
        # what the run resolved --augment to (train_config.json), else what the driver planned it to resolve to
        augment = (r.get("train") or {}).get("augment") or r.get("augment") or settings.get("augment", "?")
        status = r.get("status", "") + _partial(r, protocol_tasks)
        out.append(
            f"| **{r['label']}** | {_cell(r.get('eval'), 1)} | {_cell(r.get('eval'), 5)} | {' | '.join(pub)} | "
            f"{count} | {augment} | {status} |"
        )
    out += ["", "Tasks of each row:", ""]
    out += [f"- {r['label']}: {_source_setup(r)}" + (f"; {r['note']}" if r.get("note") else "") for r in others]
    return out


def vae_table(rows: list[dict[str, Any]], protocol_tasks: int | None = None) -> list[str]:
    """The LASIUM-VAE rows of ours, each beside the paper's own cell for the same strategy and learner ("not looked
    up" where :data:`~lasium.repro.published.PAPER_VAE_CELLS` has none), with the VAE that made its tasks."""
    vae_rows = [r for r in rows if r.get("family") == "vae"]
    if not vae_rows:
        return []
    out = [
        "| method | 1-shot | 5-shot | paper 1-shot | paper 5-shot | Δ (ours − paper) | generator | status |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in vae_rows:
        paper = paper_vae_cell(r.get("source", ""), r.get("algo", ""))
        cells = [f"{paper[0]:.2f}", f"{paper[1]:.2f}"] if paper else ["not looked up", "not looked up"]
        ours = [((r.get("eval") or {}).get(str(k)) or {}).get("accuracy_pct") for k in (1, 5)]
        delta = (
            " / ".join(f"{float(o) - t:+.2f}" for o, t in zip(ours, paper))  # type: ignore[arg-type]
            if paper and all(isinstance(o, (int, float)) for o in ours)
            else "–"
        )
        status = r.get("status", "") + _partial(r, protocol_tasks)
        out.append(
            f"| **{r['label']}** | {_cell(r.get('eval'), 1)} | {_cell(r.get('eval'), 5)} | {' | '.join(cells)} | "
            f"{delta} | {short(r.get('generator'))} | {status} |"
        )
    out += ["", f"Paper cells: {PAPER_VAE_SOURCE}."]
    noted = [r for r in vae_rows if r.get("note")]
    return out + (["", *(f"- {r['label']}: {r['note']}" for r in noted)] if noted else [])


def generator_table(rows: list[dict[str, Any]]) -> list[str]:
    """Every row whose tasks a generator made, with that generator (spec, kind, weights sha256 as recorded)."""
    made = [r for r in rows if r.get("generator") or r.get("source") in ("n", "ro", "oc", "mix")]
    if not made:
        return []
    out = ["| row | generator |", "|---|---|"]
    out += [f"| {r['label']} | {short(r.get('generator') or legacy_generator(r))} |" for r in made]
    return out


def stage_table(stages: list[dict[str, Any]]) -> list[str]:
    out = ["| stage | status | seconds | command |", "|---|---|---|---|"]
    for s in stages:
        note = f" ({s['note']})" if s.get("note") else ""
        command = f"`{s['command']}`" if s.get("command") else ""
        seconds = f"{s['seconds']:.1f}" if isinstance(s.get("seconds"), (int, float)) else "–"
        out.append(f"| {s['name']} | {s['status']}{note} | {seconds} | {command} |")
    return out


def machines_note(rows: list[dict[str, Any]]) -> list[str]:
    """A paragraph naming each machine when the rows (resumed across sessions) ran on more than one."""
    by_machine: dict[str, list[str]] = {}
    for r in rows:
        dev = r.get("device")
        if r.get("status") == "ok" and dev:
            bf16 = {True: ", native bf16", False: ", no native bf16 (auto = fp32)"}.get(dev.get("native_bf16"), "")
            name = f"{dev.get('name', '?')} ({dev.get('type', '?')}{bf16}, torch {dev.get('torch', '?')})"
            by_machine.setdefault(name, []).append(r["key"])
    if len(by_machine) < 2:
        return []
    said = "; ".join(f"{name}: {', '.join(keys)}" for name, keys in by_machine.items())
    return [f"Rows ran on {len(by_machine)} machines (the page was resumed across sessions): {said}.", ""]
