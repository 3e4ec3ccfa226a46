"""``lasium-shards``: look at, check, picture and index task-shard sets. A thin layer over ``lasium.shards``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from lasium.cli_support import OneLineGroup, user_errors
from lasium.errors import ShardError, one_line
from lasium.shards.card import human_size
from lasium.shards.codecs import image_codec_note
from lasium.shards.format import MANIFEST_NAME, Manifest, task_ranges_report
from lasium.shards.manifest import build_manifest_from_sidecars, find_shard_files, listing
from lasium.shards.remote import is_remote
from lasium.shards.streams import url_to_path
from lasium.shards.verify import load_set_manifest, verify_shard_set

FOLDER = click.Path(path_type=Path, file_okay=False)  # existence is checked by the library (one-line error, exit 2)
# A set's folder, its manifest.json, or the URL of its manifest.json (http(s)://, s3://, gs://, ...): kept as
# text, since a URL must not go through Path; existence is checked by the library.
SET = click.STRING


def _container(m: Manifest) -> str:
    if m.container == "wds":
        images = "" if m.image_codec == "npy" else f", {image_codec_note(m.image_codec)}"
        return ("WebDataset (.tar.gz, gzip" if m.compression == "gzip" else "WebDataset (.tar") + images + ")"
    return "HDF5 (.h5" + (f", {m.config['compression']})" if "compression" in m.config else ")")


def _short(d: dict[str, Any] | None) -> str:
    if not d:
        return "none"
    parts = []
    for k, v in d.items():
        if isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v):
            v = v[:12] + "…"  # a sha256
        parts.append(f"{k}={v}")
    return one_line(", ".join(parts))  # read from the set's files: no control characters reach the terminal


@click.group(cls=OneLineGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def main() -> None:
    """Inspect, verify, preview, index and describe (card) task-shard sets (lasium task-shard format v1).

    A shard set is a folder with manifest.json and numbered shards (<name>-000000.tar or .tar.gz
    for WebDataset, <name>-000000.h5 for HDF5), each with a <shard>.json sidecar. The format is
    described in docs/shard-format.md.

    inspect, verify and preview also take the URL of a published set's manifest.json or folder
    (http://, https://; file://, s3://, gs://, hf://, ... through fsspec when its backend is
    installed) and stream the shards next to it; push publishes a set at such a URL.

    \b
    Examples:
      lasium-shards inspect shards/omniglot-ro
      lasium-shards verify shards/omniglot-ro
      lasium-shards verify https://example.org/sets/omniglot-ro/manifest.json
      lasium-shards preview shards/omniglot-ro --tasks 4 --out preview.png
      lasium-shards index shards/omniglot-ro       # rebuild manifest.json from sidecars
      lasium-shards card shards/omniglot-ro        # (re)write README.md and preview.png in the set
      lasium-shards push shards/omniglot-ro s3://bucket/sets/omniglot-ro   # publish: verify, copy, verify
    """


@main.command()
@click.argument("folder", metavar="SET", type=SET)
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON instead of a summary.")
@user_errors
def inspect(folder: str, as_json: bool) -> None:
    """Summarize a shard set (folder, manifest.json or its URL): config, generator, source, tasks,
    shards, bytes per task, and the task ranges a partial set lacks (a 'missing' row: inspect
    describes a partial set, verify, preview and lasium-train refuse one without --allow-partial).

    \b
    Examples:
      lasium-shards inspect shards/omniglot-ro
      lasium-shards inspect shards/omniglot-ro --json | jq .config
      lasium-shards inspect https://example.org/sets/omniglot-ro/manifest.json
    """
    m, notes = load_set_manifest(folder)
    if as_json:
        click.echo(json.dumps(m.to_dict(), indent=2))
        return
    for note in notes:
        click.echo(f"note: {one_line(note)}", err=True)
    c = m.config
    total = sum(e.bytes for e in m.shards)
    gaps, _ = task_ranges_report(m.shards, c["num_tasks"])
    lines = [
        ("shard set", f"{m.name} in {folder}"),
        ("container", f"{_container(m)}, format v{m.format_version}, written by lasium {one_line(m.tool_version)}"),
        ("tasks", f"{m.num_tasks} of {c['num_tasks']} in {len(m.shards)} shards ({c['tasks_per_shard']} per shard)"),
        *([("missing", f"{listing(gaps)} (a partial set)")] if gaps else []),
        (
            "task",
            f"{c['ways']}-way, {c['shots']} support + {c['queries']} query per class, "
            f"images {'x'.join(str(s) for s in c['image_shape'])}, latents {'yes' if c['save_latents'] else 'no'}",
        ),
        ("size", f"{human_size(total)}, {total / max(1, m.num_tasks):,.0f} bytes per task"),
        ("strategy", str(c.get("strategy", "not recorded"))),
        ("seed", str(c["seed"])),
        ("generator", _short(m.generator)),
        ("source", _short(m.source)),
    ]
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        click.echo(f"{key:<{width}}  {value}")
    click.echo("config")
    for key, value in c.items():
        click.echo(f"  {one_line(key)} = {json.dumps(value)}")


ALLOW_PARTIAL = click.option(
    "--allow-partial",
    is_flag=True,
    help="Accept a partial set: task ranges no shard holds (a set without manifest.json whose sidecars stop "
    "short, e.g. after a disk-full job) are noted, not refused; only the shards present are used.",
)


@main.command()
@click.argument("folder", metavar="SET", type=SET)
@click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Progress bar over bytes (on a terminal)."
)
@ALLOW_PARTIAL
@user_errors
def verify(folder: str, progress: bool, allow_partial: bool) -> None:
    """Check every shard: present, size and sha256 as in the manifest, every task readable with the
    manifest's shapes and dtypes, task indices complete. SET is a folder, a manifest.json or the URL
    of one; remote shards are hashed and decoded while they stream (nothing is stored).

    Exit status 0 when all is well, 1 when any shard is bad or missing or a task range is missing
    (each one is named; --allow-partial checks a partial set's shards only), 2 when there is nothing to
    verify (no folder, no shards, unreadable manifest).

    \b
    Examples:
      lasium-shards verify shards/omniglot-ro
      lasium-shards verify /mnt/copy/omniglot-ro --no-progress && echo "copy is intact"
      lasium-shards verify https://example.org/sets/omniglot-ro/manifest.json
      lasium-shards verify shards/interrupted --allow-partial   # the shards that are there
    """
    report = verify_shard_set(folder, progress=progress, allow_partial=allow_partial)
    for note in report.notes:
        click.echo(f"note: {one_line(note)}", err=True)
    if report.ok:
        click.echo(
            f"ok: {report.shards_checked} shards, {report.tasks_checked} "
            f"tasks, {human_size(report.bytes_checked)} verified"
        )
        return
    for problem in report.problems:
        click.echo(f"bad: {one_line(str(problem))}")
    bad = {p.file for p in report.problems}
    click.echo(
        f"verify failed: {len(bad)} problem(s) in {folder} ({len(report.manifest.shards)} shards listed)", err=True
    )
    sys.exit(1)


@main.command()
@click.argument("folder", metavar="SET", type=SET)
@click.option(
    "--tasks", "count", type=click.IntRange(1, 64), default=4, show_default=True, help="How many tasks to draw."
)
@click.option("--start", type=click.IntRange(0), default=0, show_default=True, help="Index of the first task shown.")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("preview.png"),
    show_default=True,
    help="PNG to write.",
)
@ALLOW_PARTIAL
@user_errors
def preview(folder: str, count: int, start: int, out: Path, allow_partial: bool) -> None:
    """Draw tasks as a PNG: one grid per task, a row per class, support | query (red bar between).
    SET is a folder, a manifest.json or the URL of one. Each shard drawn from is checked against the
    manifest's size and sha256 first; a set without a manifest whose shards leave a task range
    uncovered is refused unless --allow-partial.

    \b
    Examples:
      lasium-shards preview shards/omniglot-ro --tasks 4 --out preview.png
      lasium-shards preview shards/omniglot-ro --start 123456 --tasks 1 --out task.png
      lasium-shards preview https://example.org/sets/omniglot-ro/manifest.json --out remote.png
    """
    from lasium.shards.card import first_tasks, save_preview

    if not is_remote(folder) and not (url_to_path(folder) or Path(folder)).exists():
        raise ShardError(f"shard folder {folder} does not exist")
    tasks = first_tasks(folder, count, start, allow_partial=allow_partial)
    if not tasks:
        raise ShardError(f"no task with index >= {start} in {folder}")
    save_preview(tasks, out)
    click.echo(f"wrote {out}: tasks {', '.join(str(t.meta['index']) for t in tasks)}")


@main.command()
@click.argument("folder", type=FOLDER)
@click.option(
    "--allow-gaps",
    "--allow-partial",
    "allow_gaps",
    is_flag=True,
    help="Write the manifest even if shards are missing (a partial set; --allow-partial is the same flag).",
)
@user_errors
def index(folder: Path, allow_gaps: bool) -> None:
    """Rebuild manifest.json from the shards' sidecars (after array jobs, or a lost manifest).

    All sidecars must agree on the set's config, generator and source; overlapping shards are an
    error, and so are missing shards unless --allow-gaps.

    \b
    Examples:
      lasium-shards index shards/omniglot-ro
      lasium-shards index shards/partial --allow-gaps
    """
    m: Manifest = build_manifest_from_sidecars(folder, allow_gaps=allow_gaps)
    expected = m.config["num_tasks"]
    gaps, _ = task_ranges_report(m.shards, expected)
    listed = {e.file for e in m.shards}
    for shard in find_shard_files(folder):
        if shard.name not in listed:
            click.echo(f"warning: {shard.name} left out (no valid sidecar: unfinished write?)", err=True)
    for gap in gaps:
        click.echo(f"warning: missing {gap}", err=True)
    missing = f" (of {expected}: partial set)" if m.num_tasks != expected else ""
    click.echo(
        f"wrote {Path(folder) / MANIFEST_NAME}: {len(m.shards)} {m.container} shards, {m.num_tasks} tasks{missing}"
    )


@main.command()
@click.argument("folder", type=FOLDER)
@click.argument("dest", metavar="DEST")
@click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Progress bars over bytes (on a terminal)."
)
@user_errors
def push(folder: Path, dest: str, progress: bool) -> None:
    """Publish the set in FOLDER at DEST: verify it here, copy it, verify the copy there.

    DEST is the folder the set goes to: a path, file://, or any fsspec URL whose backend is installed:
    s3://bucket/sets/NAME (pip install s3fs), gs://bucket/sets/NAME (gcsfs), hf://datasets/ORG/NAME
    (pip install 'lasium[hub]', after 'hf auth login' and creating the dataset repo). Shards and sidecars are
    copied first, the card and manifest.json last: a DEST with a manifest is complete. A DEST that already holds
    a different set, and a set that fails verification, are refused (exit 2); the very same set already at
    DEST is verified, not copied again. Then read it from anywhere with the same URL:
    lasium-shards verify DEST, lasium-train --shards DEST, datasets.load_dataset (the card names the shards).

    \b
    Examples:
      lasium-shards push shards/omniglot-ro /mnt/team/sets/omniglot-ro
      lasium-shards push shards/omniglot-ro file:///mnt/team/sets/omniglot-ro
      lasium-shards push shards/omniglot-ro s3://my-bucket/sets/omniglot-ro
      lasium-shards push shards/omniglot-ro hf://datasets/my-org/omniglot-ro
    """
    from lasium.shards.push import push_set

    result = push_set(folder, dest, progress=progress)
    verified = result.verified
    assert verified is not None
    done = (
        "already there (same manifest.json), not copied again"
        if result.already_there
        else f"copied {len(result.copied)} files, {human_size(result.bytes_copied)}"
    )
    click.echo(
        f"pushed {folder} to {dest}: {done}; verified there: {verified.shards_checked} shards, "
        f"{verified.tasks_checked} tasks"
    )
    click.echo(f"read it with: lasium-shards verify {dest}  (or lasium-train --shards {dest})")


@main.command()
@click.argument("folder", type=FOLDER)
@click.option(
    "--license",
    "license_id",
    metavar="ID",
    default=None,
    help="Hub license id for the card's metadata (mit, cc-by-4.0, other, ...). Default: the card's current "
    "one, else 'unknown' (the terms of the source images apply).",
)
@user_errors
def card(folder: Path, license_id: str | None) -> None:
    """(Re)write the set's card: README.md (what the set is, how to read it, the manifest's sha256)
    and preview.png (four tasks), from its manifest.json. lasium-gen writes both at the end of a job;
    verify and index ignore them.

    README.md is also a Hugging Face dataset card: its YAML metadata names the shards, so
    datasets.load_dataset("<folder>", split="train") reads one row per task, and so does the Hub once the
    set is pushed (lasium-shards push).

    \b
    Examples:
      lasium-shards card shards/omniglot-ro
      lasium-shards card shards/omniglot-ro --license mit
    """
    from lasium.shards.card import write_card

    readme, picture = write_card(folder, license=license_id)
    click.echo(f"wrote {readme} and {picture}")


if __name__ == "__main__":
    main()
