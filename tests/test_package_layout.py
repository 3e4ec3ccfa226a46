"""The stage folders (generate/, train/, evaluate/) import as lasium.<stage>, installed or from a checkout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROBE = (
    "import lasium, lasium.generate, lasium.train, lasium.evaluate; "
    "print(lasium.generate.__file__); print(lasium.train.__file__)"
)


def test_stages_import_from_a_source_checkout(repo_root: Path) -> None:
    # `python -c` / `python -m pytest` put the repository root first on sys.path: the folder lasium/ shadows
    # any installed copy, and the stage names must still resolve to the checkout's folders.
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=repo_root, capture_output=True, text=True, check=True
    ).stdout.split()
    assert Path(out[0]) == repo_root / "generate" / "__init__.py"
    assert Path(out[1]) == repo_root / "train" / "__init__.py"


def test_stages_import_from_elsewhere(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.split()
    assert Path(out[0]).parent.name == "generate" and Path(out[1]).parent.name == "train"


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
        "generate/models": ("lasium.generate.synthesis", "lasium.generate.sources", "lasium.generate.job"),
        "generate/synthesis": ("lasium.generate.sources", "lasium.generate.job"),
        "generate/sources": ("lasium.generate.job",),
        "train": ("lasium.generate", "lasium.evaluate"),
        "lasium": ("lasium.generate", "lasium.train", "lasium.evaluate"),
    }
    wrong = []
    for folder, prefixes in forbidden.items():
        for path in sorted((repo_root / folder).rglob("*.py")):
            wrong += [
                f"{path.relative_to(repo_root)} imports {name}"
                for name in _imported_modules(repo_root, path)
                if name.startswith(prefixes)
            ]
    assert not wrong, "\n".join(wrong)
