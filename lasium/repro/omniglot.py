"""Reproduce LASIUM on Omniglot end to end: :func:`run_omniglot` (``lasium-repro omniglot``), :func:`plan_omniglot`
(``--plan``) and :func:`page_only_omniglot` (``--page-only``), each driven by an
:class:`~lasium.repro.options.OmniglotOptions`.

Pipeline (each stage is the real console command, run as a subprocess; its exact command line, status and wall
time are recorded): generator (bundled, given, or ``lasium-fit``) → ``lasium-gen`` per strategy (n, ro, oc; the
preset of the learner) → ``lasium-shards preview`` → ``lasium-train`` (ProtoNets, MAML) → ``lasium-eval`` (1000
test tasks, 1- and 5-shot, the same episodes for every method); baselines: training from scratch (``lasium-eval
--baseline scratch``) and the supervised upper bound (``lasium-gen --source real`` on the labeled train split, then
the same training); other task sources (optional, last): UMTRA and CACTUs (``lasium-gen --source umtra|cactus``,
their defaults) with both learners at the LASIUM rows' budgets, and ProtoNets on a LASIUM-N + UMTRA mixture of
those rows' shard sets. Rows run in priority order; with a time budget a row starts only if its estimated time
still fits, every command is killed at the deadline, and the page says what was skipped. A failing stage is
recorded and the rest go on. The page is rewritten after every row, so an interrupted run still leaves one.

The work folder (``--work``) holds ``repro-omniglot.json`` (says the folder is a reproduction's, so
``--overwrite`` may clear it), ``shards/``, ``runs/``, ``evals/``, ``logs/`` and ``gan/`` (``--fit``); its layout
and the stage records under ``logs/`` are what ``--resume`` continues from, across versions of this package.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from lasium.errors import ConfigError

from .generators import check_vae
from .options import OmniglotOptions
from .pipeline import Pipeline
from .rows import chosen_rows, plan_rows
from .sizes import RATES, Sizes, rates_key

MARKER = "repro-omniglot.json"  # in --work: the folder is a reproduction's (what --overwrite may clear)
WORK_PARTS = ("shards", "runs", "evals", "logs", "gan")


def protocol_of(options: OmniglotOptions, sizes: Sizes) -> dict[str, Any]:
    """The evaluation protocol every row is scored with (recorded on the page)."""
    return {
        "dataset": "omniglot",
        "split": "test",
        "ways": 5,
        "shots": sizes.eval_shots,
        "queries": 15,
        "tasks": sizes.eval_tasks,
        "seed": options.eval_seed,
        "adapt_steps": sizes.adapt_steps,
        "adapt_lr": sizes.adapt_lr,
    }


def pipeline_for(options: OmniglotOptions) -> Pipeline:
    """A :class:`Pipeline` on this machine (``options.device``) at ``options``' sizes; runs nothing."""
    from .records import describe_device

    device_type, device = describe_device(options.device)
    pipe = Pipeline(options, options.stage_sizes(), RATES[rates_key(device_type)], device_type, device)
    # the generator the rows will use, before anything runs (the plan and the ablation's device need it;
    # prepare_generator replaces it with its full record)
    pipe.generator = {"spec": str(options.work / "gan") if options.fit else options.generator}
    return pipe


def ablation_native_bf16(pipe: Pipeline) -> bool:
    """Whether ``--precision auto`` meant bf16 for the ablation (its last step is the main LASIUM-N + ProtoNets row):
    on the device that ran that row when a results page holds it with today's commands, else on this one. A page
    rewritten on a machine with native bf16 thus keeps the steps of an ablation that ran without it."""
    main = next(r for r in plan_rows(pipe.sizes.maml_algo) if r.key == "protonets-n")
    earlier = pipe.committed_row(main.key, pipe.planned_commands(main), pipe.generator_record(main))
    recorded = ((earlier or {}).get("device") or {}).get("native_bf16")
    return recorded if isinstance(recorded, bool) else bool(pipe.device.get("native_bf16", True))


def plan_omniglot(options: OmniglotOptions) -> list[str]:
    """``--plan``: a line per row (done on a results page with today's commands, or to run with its estimated time)
    and a total; runs nothing and writes nothing."""
    options = replace(options, resume=True, overwrite=False).validate()
    pipe = pipeline_for(options)
    left = 0.0
    rows = chosen_rows(options, pipe.sizes, ablation_native_bf16(pipe))
    if any(row.generator == "vae" for row in rows):
        pipe.described[options.vae] = check_vae(options.vae)  # one line, before anything is planned with it
    rates = rates_key(pipe.device_type)
    lines = [f"rows of --sizes {options.sizes} on {pipe.device.get('name')} (estimates from RATES[{rates!r}]):"]
    stage_lines = []
    for row in rows:
        earlier = pipe.committed_row(row.key, pipe.planned_commands(row), pipe.generator_record(row))
        if earlier is not None:
            one, five = (earlier["eval"][k]["accuracy_pct"] for k in ("1", "5"))
            lines.append(f"  {row.key:<28} done: {one:.2f} / {five:.2f}")
            continue
        stages = pipe.stage_estimates(row)
        hours = sum(stage["seconds"] for stage in stages) / 3600
        for part in pipe.components(row):  # what this row generates is made once per run
            pipe.made[pipe.shard_key(part)] = Path()
        left += hours
        lines.append(f"  {row.key:<28} to run: ~{hours:.1f} h" + (" (optional)" if row.optional else ""))
        stage_lines += [stage_line(stage, 28) for stage in stages]
    if stage_lines:
        lines += [
            f"stages to run (one sitting: {SITTING_HOURS:g} h of wall time; a longer stage is cut there and "
            "continued exactly by --resume):",
            *stage_lines,
        ]
    lines.append(f"~{left:.1f} h of stages left, one at a time (two --only drivers on two cores halve the wall time)")
    return lines


SITTING_HOURS = 3.0  # the wall time one driver invocation is planned to run (issue 27: each stage within 3 h)


def duration(seconds: float) -> str:
    """An estimate as ``--plan`` says it: minutes under an hour, else hours."""
    return f"~{max(1, round(seconds / 60))} min" if seconds < 3600 else f"~{seconds / 3600:.1f} h"


def stage_line(stage: dict[str, Any], width: int) -> str:
    """A ``--plan`` line of a stage still to run (``{"name", "seconds", "resumes"}``): its estimated time and, when
    it is longer than one sitting, how ``--resume`` continues it."""
    over = stage["seconds"] > SITTING_HOURS * 3600
    return f"  {stage['name']:<{width}} {duration(stage['seconds'])}" + (
        f", over {SITTING_HOURS:g} h: {stage['resumes']}" if over else ""
    )


def page_only_omniglot(options: OmniglotOptions) -> dict[str, Any]:
    """``--page-only``: rewrite the page from the rows results pages hold with today's commands (``results`` and
    ``reuse_results``); the other rows are marked "not run" with their estimate. Runs no stage."""
    options = replace(options, resume=True, overwrite=False).validate()
    pipe = pipeline_for(options)
    if options.fit:  # the page is rewritten, the GAN is not fitted again
        pipe.generator = {"spec": str(options.work / "gan"), "description": "GAN fitted by the run"}
    else:
        pipe.prepare_generator()
    for row in chosen_rows(options, pipe.sizes, ablation_native_bf16(pipe)):
        pipe.note_row(row)
    pipe.include_other_gan_rows()
    return pipe.write(protocol_of(options, pipe.sizes))


def prepare_work(options: OmniglotOptions) -> None:
    """Check ``options.work`` against ``resume``/``overwrite`` (a :class:`ConfigError` says what to do), clear it for
    ``overwrite``, and mark it as a reproduction's."""
    work, marker = options.work, options.work / MARKER
    committed = options.results / "omniglot.json"
    # Stage outputs made beforehand (say, a shard set written by two `lasium-gen --shard-range` halves into
    # <work>/shards/<name>) are something to resume from too: each stage checks what it finds.
    prepared = any((work / sub).is_dir() for sub in WORK_PARTS)
    if options.resume and not marker.is_file() and not committed.is_file() and not prepared:
        raise ConfigError(f"no previous run to resume: neither {work} nor {committed} holds one; drop --resume")
    if work.exists() and any(work.iterdir()) and not options.resume:
        if not options.overwrite:
            if not marker.is_file():
                raise ConfigError(
                    f"{work} holds files but no reproduction's record ({MARKER}); pass --resume to continue from what "
                    "it holds (each stage checks it) or choose another --work"
                )
            raise ConfigError(
                f"{work} holds a previous run; pass --resume to continue it, --overwrite to clear it, or choose "
                "another --work"
            )
        if not marker.is_file():
            raise ConfigError(f"{work} is not a reproduction's work folder (no {MARKER}); choose another --work")
        for sub in WORK_PARTS:
            shutil.rmtree(work / sub, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    if not marker.is_file():
        record = {"command": options.command_line(), "options": options.to_json(), "started": time.time()}
        marker.write_text(json.dumps(record) + "\n")


def run_omniglot(options: OmniglotOptions) -> dict[str, Any]:
    """Run the chosen rows (``--resume``: reusing what ``work`` and the results pages hold) and write the page after
    every row; return the results as written to ``omniglot.json``."""
    options.validate()
    prepare_work(options)
    results = options.results
    results.mkdir(parents=True, exist_ok=True)
    if not options.resume:  # a resumed run reuses its previews
        for old in results.glob("preview-*.png"):
            old.unlink()
    pipe = pipeline_for(options)
    protocol = protocol_of(options, pipe.sizes)
    rows = chosen_rows(options, pipe.sizes, ablation_native_bf16(pipe))
    if any(row.generator == "vae" for row in rows):
        pipe.described[options.vae] = check_vae(options.vae)  # one line now, not a failed stage later
    pipe.generator["ok"] = pipe.prepare_generator()
    pipe.include_other_gan_rows()
    pipe.write(protocol)
    for row in rows:
        pipe.do_row(row)
        pipe.write(protocol)
    if not options.keep_shards:
        shutil.rmtree(options.work / "shards", ignore_errors=True)
    written = pipe.write(protocol)
    ok = sum(1 for r in pipe.rows if r["status"] == "ok")
    print(f"[repro] {ok}/{len(pipe.rows)} rows done in {time.time() - pipe.start:.0f} s; see {results / 'omniglot.md'}")
    return written
