"""``lasium-eval``: score a trained learner, or a baseline, on real labeled few-shot tasks."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path
from typing import Any

import click

from lasium.cli_support import COUNT, OneLineCommand, one_line_warnings, user_errors
from lasium.errors import ConfigError
from lasium.train import ALGORITHMS


def default_out(checkpoint: str | None, baseline: str | None, algo: str | None, dataset: str, split: str) -> Path:
    """``<run>/eval-<dataset>-<split>.json`` for a checkpoint; for a baseline,
    ``eval-scratch-<algo>-<dataset>-<split>.json`` in the current folder."""
    name = (
        f"imagefolder-{Path(dataset.split(':', 1)[1].rstrip('/')).name}"
        if dataset.startswith("imagefolder:")
        else dataset
    )
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")
    if checkpoint is not None:
        return Path(checkpoint) / f"eval-{slug}-{split}.json"
    return Path(f"eval-{baseline}-{algo}-{slug}-{split}.json")


@click.command(cls=OneLineCommand, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option(
    "--checkpoint", type=click.Path(), help="Run folder of lasium-train (its best/, else last/) or a checkpoint folder."
)
@click.option(
    "--baseline",
    type=click.Choice(["scratch"]),
    help="Score a baseline instead of a checkpoint: scratch = random init.",
)
@click.option(
    "--algo", type=click.Choice(list(ALGORITHMS)), help="Learner of the baseline (maml, fomaml or protonets)."
)
@click.option(
    "--dataset",
    default="omniglot",
    show_default=True,
    help="omniglot, celeba, celeba-attributes, mini-imagenet or imagefolder:PATH; the first four default to the "
    "LASIUM paper's protocol for them.",
)
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="test", show_default=True)
@click.option(
    "--ways",
    type=int,
    default=None,
    help="N classes per task [default: the paper's N for the dataset; for an image folder the checkpoint's N, "
    "5 for a baseline].",
)
@click.option("--shots", default=None, help="K_tr values, comma-separated [default: the paper's; 1,5 for a folder].")
@click.option("--queries", type=int, default=None, help="Query images per class [default: the paper's; 15].")
@click.option("--tasks", type=COUNT, default=None, help="Test tasks per K_tr [default: 1000].")
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Episode seed: the same seed gives the same tasks to every method.",
)
@click.option("--init-seed", type=int, default=None, help="Random init of --baseline scratch [default: --seed].")
@click.option(
    "--image-size",
    type=int,
    default=None,
    help="Image side for --baseline [default: the dataset's: 28 Omniglot and folders, 84 CelebA and mini-ImageNet]; "
    "a checkpoint fixes its own.",
)
@click.option(
    "--adapt-steps",
    type=int,
    default=None,
    help="MAML SGD steps on each test task's support set [default: the paper's for the dataset; 50].",
)
@click.option(
    "--adapt-lr",
    type=float,
    default=None,
    help="MAML inner learning rate at test time [default: the paper's: 0.4 Omniglot, 0.05 CelebA and mini-ImageNet; "
    "0.4 for a folder].",
)
@click.option(
    "--chunk",
    type=int,
    default=None,
    help="Tasks adapted together (vmapped; 1 = one at a time, no vmap) [default: 250 on CUDA, 1 on CPU].",
)
@click.option(
    "--workers",
    type=int,
    default=1,
    show_default=True,
    help="CPU only: processes scoring tasks side by side, one thread each (e.g. the number of free cores). The "
    "scores are those of one process; an interrupted run resumes with any --workers.",
)
@click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "bf16"]),
    default="auto",
    show_default=True,
    help="auto = bf16 autocast where the device computes bf16 natively (CUDA; CPUs with AVX512-BF16/AMX), else fp32.",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option(
    "--data-root", type=click.Path(file_okay=False), default=None, help="Dataset root [default: $LASIUM_DATA]."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="JSON to write [default: <run>/eval-<dataset>-<split>.json; eval-scratch-<algo>-... for a baseline].",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue an interrupted evaluation from <out>.partial.json (written as it goes): tasks already scored "
    "with the same weights, protocol, precision and chunk are kept, and the report is the uninterrupted one.",
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
@user_errors
@one_line_warnings
def main(
    checkpoint: str | None,
    baseline: str | None,
    algo: str | None,
    dataset: str,
    split: str,
    ways: int | None,
    shots: str | None,
    queries: int | None,
    tasks: int | None,
    seed: int,
    init_seed: int | None,
    image_size: int | None,
    adapt_steps: int | None,
    adapt_lr: float | None,
    chunk: int | None,
    workers: int,
    precision: str,
    device: str,
    data_root: str | None,
    out: str | None,
    resume: bool,
    quiet: bool,
) -> None:
    """Score a few-shot learner on real labeled N-way K-shot tasks: mean query accuracy ± 95% CI per K_tr.

    Each benchmark of the LASIUM paper (Khodadadeh et al., ICLR 2021) is evaluated with the paper's protocol
    unless an option overrides it: 1000 tasks from the test split with a fixed seed (the same tasks for every
    method), CI = 1.96·std/√tasks, and

    \b
      omniglot           5-way, K_tr 1, 5,         15 queries; MAML 50 steps of lr 0.4
      celeba             5-way, K_tr 1, 5, 15,     15 queries; MAML 50 steps of lr 0.05 (identities)
      celeba-attributes  2-way, K_tr 5,             5 queries; MAML 50 steps of lr 0.05 (attribute tasks)
      mini-imagenet      5-way, K_tr 1, 5, 20, 50, 15 queries; MAML 50 steps of lr 0.05

    MAML adapts on each task's support set (batch norm on the task's own batch statistics), vmapped over
    chunks of tasks; ProtoNets classify by the nearest class mean (squared Euclidean), with no adaptation.
    An image folder has no paper protocol: 5-way (the checkpoint's N), K_tr 1 and 5, 15 queries, lr 0.4.

    \b
    Examples:
      lasium-eval --checkpoint runs/ro-maml
      lasium-eval --checkpoint runs/mini-proto --dataset mini-imagenet --data-root ~/data
      lasium-eval --checkpoint runs/celeba-proto --dataset celeba-attributes --data-root ~/data
      lasium-eval --checkpoint runs/ro-proto --shots 1,5 --tasks 1000 --out results/ro-proto.json
      lasium-eval --checkpoint runs/ro-maml --workers 2      # a CPU with two free cores: two processes
      lasium-eval --baseline scratch --algo maml --seed 0
      lasium-eval --checkpoint runs/pics-proto --dataset imagefolder:~/pics --ways 10 --shots 1
      lasium-eval --checkpoint runs/ro-maml --out ro-maml.json --resume   # after an interruption

    \b
    Prints a table and writes JSON (scores, the checkpoint's configs, the protocol, a sha256 digest of
    the episodes, device, wall time). Equal episode digests mean two results were scored on the same tasks.
    While it runs, the tasks scored so far are kept in <out>.partial.json (removed at the end), so an
    interrupted evaluation continues with --resume instead of starting over.
    """
    from lasium.evaluate.evaluator import evaluate_checkpoint, evaluate_scratch
    from lasium.evaluate.journal import EvalJournal, partial_path
    from lasium.evaluate.protocol import EvalProtocol, paper_protocol, parse_shots
    from lasium.evaluate.report import format_table, write_json_atomic
    from lasium.runtime import keep_freed_memory

    if (checkpoint is None) == (baseline is None):
        raise ConfigError("give either --checkpoint RUN or --baseline scratch --algo ALGO")
    if baseline is not None and algo is None:
        raise ConfigError("--baseline scratch needs --algo maml, fomaml or protonets")
    if checkpoint is not None and algo is not None:
        raise ConfigError("--algo is only for --baseline; a checkpoint knows its own algorithm")
    if checkpoint is not None and image_size is not None:
        raise ConfigError(
            "--image-size is only for --baseline; a checkpoint evaluates at the image size it was trained on"
        )
    if image_size is not None and image_size < 16:
        raise ConfigError(f"--image-size must be at least 16 (four 2x2 poolings), got {image_size}")
    if chunk is not None and chunk < 1:
        raise ConfigError(f"--chunk must be at least 1, got {chunk}")
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    from lasium.data.registry import resolve_dataset

    resolve_dataset(dataset)  # an unknown name is one line before anything is loaded
    keep_freed_memory()  # reuse one task's activation buffers for the next (no page faults)
    paper = paper_protocol(dataset)
    protocol = EvalProtocol.for_dataset(
        dataset,
        split=split,
        ways=ways,
        shots=parse_shots(shots) if shots is not None else None,
        queries=queries,
        tasks=tasks,
        seed=seed,
        adapt_steps=adapt_steps,
        adapt_lr=adapt_lr,
    ).validate()
    out_path = Path(out) if out else default_out(checkpoint, baseline, algo, dataset, split)
    if out_path.is_dir():
        raise ConfigError(f"--out {out_path} is a folder; give a file name such as {out_path / 'results.json'}")
    journal = EvalJournal(partial_path(out_path), resume=resume)
    if resume and not journal.earlier and not quiet:
        click.echo(f"nothing to resume in {journal.path}: scoring every task", err=True)
    common: dict[str, Any] = dict(
        device=device,
        chunk=chunk,
        precision=precision,
        data_root=data_root,
        progress=not quiet,
        journal=journal,
        workers=workers,
    )
    if checkpoint is not None:
        if ways is None and paper is None:  # an image folder: the checkpoint's own N
            from lasium.train import find_checkpoint, read_configs

            protocol.ways = read_configs(find_checkpoint(checkpoint))[0].ways
        report = evaluate_checkpoint(checkpoint, protocol, **common)
    else:
        report = evaluate_scratch(
            str(algo), protocol, init_seed=seed if init_seed is None else init_seed, image_size=image_size, **common
        )
    report.command = " ".join(shlex.quote(a) for a in ["lasium-eval"] + sys.argv[1:])
    write_json_atomic(out_path, report.to_dict())
    journal.discard()
    click.echo(format_table(report))
    for shots, kept in report.extra.get("resumed_tasks", {}).items():
        click.echo(f"resumed: {kept} {shots}-shot tasks were scored before the interruption", err=True)
    click.echo(f"wrote {out_path}", err=True)


if __name__ == "__main__":  # pragma: no cover
    main()
