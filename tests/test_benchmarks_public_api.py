"""The reproduction (``lasium/repro/``) and the speed benchmarks (``benchmarks/``) use lasium's public API only, and no
benchmark or test edits ``sys.path``.

The rule, checked on the source of every ``*.py`` file under ``lasium/repro/`` and ``benchmarks/`` (parsed with ``ast``,
nothing imported from them). An absolute import of a module ``M`` named ``lasium`` or ``lasium.…`` -- ``import M``,
``from M import n``, or ``importlib.import_module("M")`` with a literal name -- is allowed only when ``M`` is one of:

1. a **package** of the public API, :data:`PACKAGES` (``lasium.generate``, ``lasium.train``, ``lasium.evaluate``,
   ``lasium.repro``, and the core's ``lasium.shards`` and ``lasium.data``): every ``n`` must be in ``M.__all__``
   (the names the package exports lazily);
2. a **core module**, a single-file module directly under ``lasium/`` (``lasium.tasks``, ``lasium.runtime``,
   ``lasium.errors``, ...): every ``n`` must exist in it and be public: no leading underscore, and in ``M.__all__``
   when the module defines one;
3. ``lasium`` itself: ``n`` must be ``__version__`` or the name of a package or core module above.

Everything else is refused: a module inside a package (``lasium.generate.job.job``, ``lasium.shards.reader``,
``lasium.train.backbone``, also as ``from lasium.train import backbone``), a private name (``_x``), and ``*``.
The one exception is the reproduction's own modules: a file in ``lasium/repro/`` may import ``lasium.repro.<module>``
(it is that package; relative imports are not checked). Nothing else is exempt: a piece that a benchmark times on
its own (``meta_step``, ``chunk_accuracy``, ``HostStager``) is a public name of its package. The white-box fuzz
campaign, which drives internals on purpose, lives in ``tests/`` (``tests/fuzz_sets.py``).

``sys.path``: no ``*.py`` file under ``benchmarks/`` or ``tests/`` assigns to it, to an item or slice of it, or calls
one of its mutating methods (``insert``, ``append``, ``extend``, ``remove``, ``pop``, ``clear``), imports ``path``
from ``sys``, or calls ``site.addsitedir``. Test helpers come from pyproject's ``pythonpath`` (``tests/``) and the
package from its installation.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import lasium

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("lasium.generate", "lasium.train", "lasium.evaluate", "lasium.repro", "lasium.shards", "lasium.data")
MUTATORS = {"insert", "append", "extend", "remove", "pop", "clear"}


def core_modules() -> set[str]:
    """The single-file modules directly under lasium/ (lasium.tasks, lasium.runtime, ...)."""
    return {f"lasium.{m.name}" for m in pkgutil.iter_modules(lasium.__path__) if not m.ispkg}


def import_problem(module: str, names: list[str], repro_file: bool) -> list[str]:
    """Why importing ``names`` from ``module`` (``[]`` for a plain ``import module``) breaks the rule; [] if it does
    not."""
    if module != "lasium" and not module.startswith("lasium."):
        return []
    if repro_file and (module == "lasium.repro" or module.startswith("lasium.repro.")):
        return []
    if "*" in names:
        return [f"from {module} import * (import the names you use)"]
    if module == "lasium":
        allowed = (
            {"__version__"} | {m.split(".", 1)[1] for m in PACKAGES} | {m.split(".", 1)[1] for m in core_modules()}
        )
        return [f"from lasium import {n} (not a public package or core module)" for n in names if n not in allowed]
    if module in PACKAGES:
        exported = set(importlib.import_module(module).__all__)
        return [f"{module}.{n} is not in {module}.__all__" for n in names if n not in exported]
    if module in core_modules():
        imported = importlib.import_module(module)
        public = getattr(imported, "__all__", None)
        wrong = []
        for n in names:
            if n.startswith("_") or not hasattr(imported, n) or (public is not None and n not in public):
                wrong.append(f"{module}.{n} is not a public name of that core module")
        return wrong
    inside = next((p for p in PACKAGES if module.startswith(p + ".")), None)
    hint = f" (use {inside}'s exports)" if inside else ""
    return [f"{module} is an internal module{hint}"]


def import_problems(source: str, where: str, repro_file: bool = False) -> list[str]:
    """Every import of ``source`` that breaks the rule in the module docstring, as ``where:line: why``."""
    wrong = []
    for node in ast.walk(ast.parse(source)):
        found: list[str] = []
        if isinstance(node, ast.Import):
            for alias in node.names:
                found += import_problem(alias.name, [], repro_file)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found = import_problem(node.module, [a.name for a in node.names], repro_file)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found = import_problem(node.args[0].value, [], repro_file)
        wrong += [f"{where}:{node.lineno}: {why}" for why in found]
    return wrong


def is_sys_path(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "path"
        and isinstance(node.value, ast.Name)
        and node.value.id == "sys"
    )


def sys_path_edits(source: str, where: str) -> list[str]:
    """Every place in ``source`` that changes ``sys.path`` (see the module docstring), as ``where:line: what``."""
    edits = []
    for node in ast.walk(ast.parse(source)):
        what = None
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if is_sys_path(t) or (isinstance(t, ast.Subscript) and is_sys_path(t.value)):
                    what = "assigns to sys.path"
        elif isinstance(node, ast.Delete) and any(
            isinstance(t, ast.Subscript) and is_sys_path(t.value) for t in node.targets
        ):
            what = "deletes from sys.path"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in MUTATORS and is_sys_path(node.func.value):
                what = f"sys.path.{node.func.attr}(...)"
            elif (
                node.func.attr == "addsitedir"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "site"
            ):
                what = "site.addsitedir(...)"
        elif isinstance(node, ast.ImportFrom) and node.module == "sys" and any(a.name == "path" for a in node.names):
            what = "from sys import path"
        if what:
            edits.append(f"{where}:{node.lineno}: {what}")
    return edits


def python_files(*folders: str) -> list[Path]:
    return [p for folder in folders for p in sorted((REPO / folder).rglob("*.py"))]


def test_the_reproduction_and_the_benchmarks_import_public_names_only():
    files = python_files("lasium/repro", "benchmarks")
    assert len(files) > 20
    wrong = []
    for path in files:
        where = str(path.relative_to(REPO))
        wrong += import_problems(path.read_text(), where, repro_file=where.startswith("lasium/repro/"))
    assert not wrong, "\n".join(wrong)


def test_no_benchmark_or_test_edits_sys_path():
    files = python_files("benchmarks", "tests")
    assert len(files) > 50
    edits = [e for path in files for e in sys_path_edits(path.read_text(), str(path.relative_to(REPO)))]
    assert not edits, "\n".join(edits)


def test_every_core_package_is_in_the_rule():
    """A new package under lasium/ must be added to PACKAGES (with its __all__) before anything may import it."""
    packages = {f"lasium.{m.name}" for m in pkgutil.iter_modules(lasium.__path__) if m.ispkg}
    assert packages <= set(PACKAGES)
    assert {"lasium.tasks", "lasium.runtime", "lasium.errors"} <= core_modules()


@pytest.mark.parametrize(
    ("source", "problems"),
    [
        ("from lasium.train import meta_step, TaskStream\nimport lasium.train\nimport numpy", 0),
        ("from lasium.tasks import to_device\nfrom lasium.runtime import RankInfo\nfrom lasium import __version__", 0),
        ("from lasium.generate.job.job import GenerationJob", 1),
        ("import lasium.shards.reader", 1),
        ("from lasium.train import backbone", 1),  # a submodule through its package
        ("from lasium.train import meta_step, _private, not_a_name", 2),
        ("from lasium.tasks import _private", 1),
        ("from lasium.runtime import *", 1),
        ("from lasium import imaginary", 1),
        ("import importlib\nimportlib.import_module('lasium.train.trainer')", 1),
    ],
)
def test_the_import_rule_on_examples(source: str, problems: int):
    assert len(import_problems(source, "x.py")) == problems, import_problems(source, "x.py")


def test_the_repro_package_may_import_its_own_modules_and_nothing_else_may():
    source = "from lasium.repro.rows import Row"
    assert import_problems(source, "lasium/repro/x.py", repro_file=True) == []
    assert len(import_problems(source, "benchmarks/x.py")) == 1


@pytest.mark.parametrize(
    "source",
    [
        "import sys\nsys.path.insert(0, 'x')",
        "import sys\nsys.path.append('x')",
        "import sys\nsys.path = ['x']",
        "import sys\nsys.path[:0] = ['x']",
        "import sys\nsys.path += ['x']",
        "from sys import path",
        "import site\nsite.addsitedir('x')",
    ],
)
def test_sys_path_edits_are_seen(source: str):
    assert len(sys_path_edits(source, "x.py")) == 1


def test_reading_sys_path_is_not_an_edit():
    assert sys_path_edits("import sys\nprint(list(sys.path), sys.path[0])", "x.py") == []
