"""One case of the fuzz campaign (``tests/fuzz_sets.py``): build the damaged set, run every command on it,
and check the invariants (the list is in ``fuzz_sets``'s docstring).

Commands run in this process (click's runner, the trainer's task stream without a DataLoader); the campaign runs
each case in a forked child, so a crash or a hang is caught too.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import stat
import tempfile
import traceback
from pathlib import Path
from typing import Any

import numpy as np
from fuzz_cases import CONTROL, MARK, SET_NAME, BaseSet
from fuzz_mutations import MUTATORS, reseal
from fuzz_tar import Context, read_regular

# ------------------------------------------------------------------------------------------------ running a case


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` with its type and content digest (links: their target)."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            st_ = p.lstat()
            if stat.S_ISLNK(st_.st_mode):
                out[rel] = "link:" + os.readlink(p)
            elif stat.S_ISREG(st_.st_mode):
                out[rel] = "file:" + hashlib.sha256(p.read_bytes()).hexdigest()
            elif stat.S_ISDIR(st_.st_mode):
                out[rel] = "dir"
            else:
                out[rel] = f"other:{stat.S_IFMT(st_.st_mode)}"
    return out


def marks(root: Path, mark: str) -> list[str]:
    """Files a planted command made: ``touch PWNED`` (relative to some folder) or ``touch <absolute mark>``."""
    found = [str(p) for p in root.rglob(MARK)]
    return found + ([mark] if os.path.lexists(mark) else [])


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def check_cli(what: str, result: Any, allowed_codes: tuple[int, ...]) -> list[str]:
    """Invariants 1 and 2 on a click result."""
    problems = []
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-1500:]
        return [f"{what}: traceback ({type(exc).__name__}: {exc})\n{tb}"]
    code = result.exit_code
    if code not in allowed_codes:
        problems.append(f"{what}: exit {code} (allowed {allowed_codes})")
    out, err = result.stdout, result.stderr
    if "Traceback" in out + err:
        problems.append(f"{what}: a traceback in the output")
    if CONTROL.search(out + err):
        problems.append(f"{what}: control characters in the output: {(out + err)[:300]!r}")
    info = ("note: ", "warning: ", "run folder: ", "done: ")
    if code == 2:
        errors = [line for line in _lines(err) if not line.startswith(info)]
        if len(errors) != 1 or not errors[0].startswith("error: ") or _lines(out):
            problems.append(f"{what}: exit 2 without exactly one error line: {err[:400]!r} {out[:200]!r}")
    elif code == 1:
        bad = [line for line in _lines(out) if not line.startswith("bad: ")]
        other = [line for line in _lines(err) if not line.startswith(info + ("verify failed: ",))]
        if bad or other:
            problems.append(f"{what}: exit 1 with lines that are not one problem each: {(bad + other)[:3]!r}")
    return problems


def _listed_entries(folder: Path) -> list[dict] | None:
    """The shard entries the set vouches for as the reader would see them (manifest, else sidecars), or None.

    Only regular files are read (``_read``): a FIFO planted in the set would block this process forever."""
    try:
        doc = json.loads(read_regular(folder / "manifest.json", follow=True) or b"")
        return [e for e in doc["shards"] if isinstance(e, dict)]
    except (ValueError, KeyError, TypeError, RecursionError):
        pass
    entries = []
    for p in folder.glob("*.json"):
        try:
            doc = json.loads(read_regular(p, follow=True) or b"")
            entries.append(doc["shard"])
        except (ValueError, KeyError, TypeError, RecursionError):
            continue
    return entries or None


def check_verify_ok(folder: Path) -> list[str]:
    """Invariant 5 for ``verify`` saying ok: every listed shard has its recorded size and sha256."""
    entries = _listed_entries(folder)
    problems = []
    sidecars_only = not (folder / "manifest.json").is_file()
    for e in entries or []:
        if sidecars_only and not (isinstance(e.get("file"), str) and (folder / e["file"]).is_file()):
            continue  # a sidecar without its shard is a gap (refused, or noted with --allow-partial)
        name = e.get("file")
        data = read_regular(folder / name, follow=True) if isinstance(name, str) and "\0" not in name else None
        if data is None:
            problems.append(f"verify: ok, but listed shard {e.get('file')!r} cannot be read")
            continue
        if len(data) != e.get("bytes") or hashlib.sha256(data).hexdigest() != e.get("sha256"):
            problems.append(f"verify: ok, but {e['file']} does not have its recorded size and sha256")
    return problems


def vouched(folder: Path) -> bool:
    """Whether the set claims to vouch for its shards (a manifest or a sidecar exists)."""
    return (folder / "manifest.json").exists() or any(folder.glob("*.json"))


def check_task(task_index: int, arrays: tuple[np.ndarray, ...], base: BaseSet, exact: bool) -> str | None:
    want = base.tasks.get(task_index)
    support, query = arrays[0], arrays[1]
    if exact:
        if want is None:
            return f"stream: yielded task {task_index}, which the original set does not hold"
        if not (np.array_equal(support, want.support) and np.array_equal(query, want.query)):
            return f"stream: task {task_index} differs from the original task of that index (changed bytes reached it)"
        return None
    ref = next(iter(base.tasks.values()))
    if support.dtype != np.uint8 or support.shape != ref.support.shape or query.shape != ref.query.shape:
        return f"stream: task {task_index} has shape {support.shape}/{query.shape}, not the set's layout"
    return None


def run_stream(source: str, case: dict, base: BaseSet, exact: bool) -> list[str]:
    """The trainer's task stream in-process: open_mixture → TaskStream (one round, no DataLoader)."""
    from lasium.errors import LasiumError
    from lasium.train.mixture import open_mixture
    from lasium.train.streaming import TaskStream

    problems = []
    try:
        shard_set, mixture = open_mixture([source], allow_partial=case["allow_partial"])
        stream = TaskStream(
            shard_set,
            1,
            seed=0,
            workers=0,
            shuffle_buffer=1,
            skip_corrupt=case["skip_corrupt"],
            endless=False,
            mixture=mixture,
        )
        with contextlib.redirect_stderr(io.StringIO()) as err:
            for item in stream:
                if "error" in item:
                    if "\n" in item["error"] or CONTROL.search(item["error"]):
                        problems.append(f"stream: error message is not one clean line: {item['error'][:300]!r}")
                    break
                for index, support, query in zip(item["indices"].tolist(), item["support"], item["query"]):
                    problem = check_task(int(index), (support, query), base, exact)
                    if problem:
                        problems.append(problem)
        if CONTROL.search(err.getvalue()):
            problems.append(f"stream: control characters in its warnings: {err.getvalue()[:300]!r}")
    except LasiumError as exc:
        if "\n" in str(exc) or CONTROL.search(str(exc)):
            problems.append(f"stream: error message is not one clean line: {str(exc)[:300]!r}")
    except Exception as exc:  # invariant 1: anything else is a traceback
        tb = traceback.format_exc()[-1500:]
        problems.append(f"stream: traceback ({type(exc).__name__}: {exc})\n{tb}")
    return problems


_REFERENCE_PNG: dict[tuple[str, tuple[int, ...]], bytes] = {}


def reference_preview(base: BaseSet, indices: tuple[int, ...], scratch: Path) -> bytes | None:
    from lasium.shards.card import save_preview

    key = (base.key, indices)
    if key not in _REFERENCE_PNG:
        if any(i not in base.tasks for i in indices):
            return None
        out = scratch / f"ref-{base.key}-{'-'.join(map(str, indices))}.png"
        save_preview([base.tasks[i] for i in indices], out)
        _REFERENCE_PNG[key] = out.read_bytes()
        out.unlink()
    return _REFERENCE_PNG[key]


def commands(source: str, out: Path, case: dict) -> list[tuple[str, Any, list[str], tuple[int, ...], list[str]]]:
    """(name, click command, args, allowed exit codes, paths it may write below the case root)."""
    from lasium.shards.cli import main as shards_main
    from lasium.train.cli import main as train_main

    partial = ["--allow-partial"] if case["allow_partial"] else []
    cmds = [
        ("verify", shards_main, ["verify", source, "--no-progress", *partial], (0, 1, 2), []),
        ("inspect", shards_main, ["inspect", source], (0, 2), []),
        ("inspect --json", shards_main, ["inspect", source, "--json"], (0, 2), []),
        (
            "preview",
            shards_main,
            ["preview", source, "--tasks", "2", "--out", str(out / "p.png"), *partial],
            (0, 2),
            ["out/p.png"],
        ),
    ]
    if case["train_cli"]:
        args = ["--shards", source, "--algo", "protonets", "--iterations", "2", "--meta-batch", "1", "--workers", "0"]
        args += ["--shuffle-buffer", "2"]
        args += [
            "--val-dataset",
            "none",
            "--device",
            "cpu",
            "--out",
            str(out / "run"),
            "--quiet",
            "--checkpoint-every",
            "0",
        ]
        args += (["--skip-corrupt"] if case["skip_corrupt"] else []) + partial
        cmds.append(("lasium-train", train_main, args, (0, 2), ["out/run"]))
    if case["where"] != "http":  # index writes the manifest through its temporary name (which a dead write may leave)
        cmds.append(
            (
                "index",
                shards_main,
                ["index", source.removesuffix("/manifest.json"), *(["--allow-gaps"] if case["allow_partial"] else [])],
                (0, 2),
                ["set/manifest.json", "set/.manifest.json.tmp"],
            )
        )
    return cmds


def run_case(case: dict, bases: dict[str, BaseSet], work: Path, base_url: str | None) -> list[str]:
    """Build the case's set under a fresh folder of ``work``, run every command, return the broken invariants."""
    from click.testing import CliRunner

    from lasium.shards.integrity import forget_checked

    base = bases[case["base"]]
    root = Path(tempfile.mkdtemp(prefix="case-", dir=work))
    folder, out, outside = root / "set", root / "out", root / "outside"
    shutil.copytree(base.folder, folder)
    out.mkdir()
    outside.mkdir()
    (outside / "secret").write_bytes(
        base.files[f"{SET_NAME}-000000" + {"gz": ".tar.gz", "h5": ".h5"}.get(base.key, ".tar")]
    )
    shutil.copyfile(outside / "secret", outside / "secret.h5")
    mark = str(work / f"{MARK}-abs-{root.name}")
    ctx = Context(folder, root, mark, base, http=case["where"] == "http")
    for m in case["mutations"]:
        MUTATORS[m["op"]](ctx, m)
    if case["drop_manifest"]:
        drop = folder / "manifest.json"
        if drop.is_dir() and not drop.is_symlink():
            shutil.rmtree(drop)
        elif drop.exists() or drop.is_symlink():
            drop.unlink()
    if case["reseal"]:
        reseal(ctx)
    exact = not case["reseal"] and vouched(folder)
    if case["where"] == "http":
        source = f"{base_url}/{root.name}/set/manifest.json"
    elif case["where"] == "manifest":
        source = str(folder / "manifest.json")
    elif case["where"] == "inside":
        source = "."
    else:
        source = str(folder)
    cwd = folder if case["where"] == "inside" else root
    violations: list[str] = []
    before_work = sorted(p.name for p in work.iterdir())
    os.chdir(cwd)
    forget_checked()
    snap = snapshot(root)
    violations += run_stream(source, case, base, exact)
    for name, cli, args, codes, writable in commands(source, out, case):
        forget_checked()
        result = CliRunner().invoke(cli, args)
        violations += check_cli(name, result, codes)
        after = snapshot(root)
        for path in sorted(set(snap) | set(after)):
            if snap.get(path) != after.get(path) and not any(path == w or path.startswith(w + "/") for w in writable):
                violations.append(
                    f"{name}: wrote {path} ({snap.get(path)} -> {after.get(path)}), outside what it may write"
                )
        snap = after
        if name == "verify" and result.exit_code == 0:
            violations += check_verify_ok(folder)
        if name == "preview" and result.exit_code == 0 and exact:
            m = re.search(r"tasks ([0-9, ]+)$", result.stdout.strip())
            indices = tuple(int(x) for x in m.group(1).split(", ")) if m else ()
            want = reference_preview(base, indices, work)
            if want is None or (out / "p.png").read_bytes() != want:
                violations.append(f"preview: drew tasks {indices} that are not the original tasks")
    found = marks(work, mark)
    if found:
        violations.append(f"a planted command ran: {found}")
    after_work = sorted(p.name for p in work.iterdir())
    if after_work != before_work:
        violations.append(f"wrote outside the case folder: {sorted(set(after_work) ^ set(before_work))}")
    return violations
