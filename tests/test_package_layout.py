"""One package tree: the stages (lasium/generate, lasium/train, lasium/evaluate, lasium/repro) are subpackages of
lasium/, so a checkout imports as what it installs, from any working directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

STAGES = ("generate", "train", "evaluate", "repro")  # subpackages of lasium/; the rest of lasium/ is the core

PROBE = (
    "import sys, lasium, lasium.generate, lasium.train, lasium.evaluate; "
    "print(lasium.generate.__file__); print(lasium.train.__file__); "
    "print(any(type(f).__module__.startswith('lasium') for f in sys.meta_path))"
)


def test_stages_are_subpackages_of_the_checkout(repo_root: Path) -> None:
    """From the checkout's root and from tests/, lasium.<stage> is the checkout's lasium/<stage> (no mapping, no
    import hook), and there is no top-level ``train`` or ``generate`` package to import by mistake."""
    for cwd in (repo_root, repo_root / "tests"):
        out = subprocess.run(
            [sys.executable, "-c", PROBE], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.split()
        assert Path(out[0]).parent == repo_root / "lasium" / "generate"
        assert Path(out[1]).parent == repo_root / "lasium" / "train"
        assert out[2] == "False"
    for stage in ("train", "generate", "evaluate", "repro"):
        assert not (repo_root / stage).exists(), f"{stage}/ at the checkout's root: stages live in lasium/{stage}/"


def test_package_namespaces_are_lazy_and_complete(repo_root: Path) -> None:
    # Importing a namespace must not pull in torch (lasium-data info stays fast); each exported name resolves.
    probe = (
        "import sys, lasium.data, lasium.train, lasium.evaluate; heavy = 'torch' in sys.modules; "
        "names = [(m, n) for m in (lasium.data, lasium.train, lasium.evaluate) for n in m.__all__]; "
        "[getattr(m, n) for m, n in names]; print(heavy, len(names), all(n in dir(m) for m, n in names))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=repo_root, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0] == "False" and int(out[1]) > 20 and out[2] == "True"


def test_unknown_lazy_name_is_an_attribute_error() -> None:
    import lasium.train

    try:
        lasium.train.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "lasium.train" in str(exc) and "no_such_name" in str(exc)
    else:
        raise AssertionError("an unknown name must raise AttributeError")


def _imported_modules(repo_root: Path, path: Path) -> set[str]:
    """Absolute names of the lasium modules a source file imports (relative imports resolved)."""
    import ast

    folders = path.relative_to(repo_root).parts[:-1]
    package = ".".join(folders if folders[0] == "lasium" else ("lasium", *folders))
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            if node.level:
                names.add(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                names.add(node.module)
    return {n for n in names if n.startswith("lasium")}


def test_imports_point_one_way(repo_root: Path) -> None:
    # generate: job -> sources -> synthesis -> models (never backwards); the core imports no stage; train imports
    # neither generate nor evaluate (docs/ARCHITECTURE.md, "Allowed imports").
    forbidden = {
        "lasium/generate/models": ("lasium.generate.synthesis", "lasium.generate.sources", "lasium.generate.job"),
        "lasium/generate/synthesis": ("lasium.generate.sources", "lasium.generate.job"),
        "lasium/generate/sources": ("lasium.generate.job",),
        "lasium/train": ("lasium.generate", "lasium.evaluate"),
        "lasium": ("lasium.generate", "lasium.train", "lasium.evaluate", "lasium.repro"),
    }
    wrong = []
    for folder, prefixes in forbidden.items():
        paths = sorted((repo_root / folder).rglob("*.py"))
        if folder == "lasium":  # the core: lasium/ without its stages
            paths = [p for p in paths if p.relative_to(repo_root / "lasium").parts[0] not in STAGES]
        for path in paths:
            wrong += [
                f"{path.relative_to(repo_root)} imports {name}"
                for name in _imported_modules(repo_root, path)
                if name.startswith(prefixes)
            ]
    assert not wrong, "\n".join(wrong)


def test_import_contract_covers_every_core_module(repo_root: Path) -> None:
    """The core contract of .importlinter lists every module and package of lasium/ but its stages (a new core
    module is checked too); import-linter itself runs in .ci/run."""
    import configparser

    parser = configparser.ConfigParser()
    parser.read(repo_root / ".importlinter")
    listed = set(parser["importlinter:contract:core"]["source_modules"].split())
    core = {
        f"lasium.{p.stem if p.is_file() else p.name}"
        for p in (repo_root / "lasium").iterdir()
        if (p.suffix == ".py" and p.stem != "__init__")
        or (p.is_dir() and (p / "__init__.py").is_file() and p.name not in STAGES)
    }
    assert listed == core, f"missing {sorted(core - listed)}, stale {sorted(listed - core)}"
