"""The stage folders (generate/, train/, evaluate/) import as lasium.<stage>, installed or from a checkout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROBE = "import lasium, lasium.generate, lasium.train, lasium.evaluate; print(lasium.generate.__file__); print(lasium.train.__file__)"


def test_stages_import_from_a_source_checkout(repo_root: Path) -> None:
    # `python -c` / `python -m pytest` put the repository root first on sys.path: the folder lasium/ shadows
    # any installed copy, and the stage names must still resolve to the checkout's folders.
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=repo_root, capture_output=True, text=True, check=True).stdout.split()
    assert Path(out[0]) == repo_root / "generate" / "__init__.py"
    assert Path(out[1]) == repo_root / "train" / "__init__.py"


def test_stages_import_from_elsewhere(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, capture_output=True, text=True, check=True).stdout.split()
    assert Path(out[0]).parent.name == "generate" and Path(out[1]).parent.name == "train"



def test_package_namespaces_are_lazy_and_complete(repo_root: Path) -> None:
    # Importing a namespace must not pull in torch (lasium-data info stays fast); each exported name resolves.
    probe = ("import sys, lasium.data, lasium.train, lasium.evaluate; heavy = 'torch' in sys.modules; "
             "names = [(m, n) for m in (lasium.data, lasium.train, lasium.evaluate) for n in m.__all__]; "
             "[getattr(m, n) for m, n in names]; print(heavy, len(names), all(n in dir(m) for m, n in names))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=repo_root, capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "False" and int(out[1]) > 20 and out[2] == "True"


def test_unknown_lazy_name_is_an_attribute_error() -> None:
    import lasium.train

    try:
        lasium.train.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "lasium.train" in str(exc) and "no_such_name" in str(exc)
    else:
        raise AssertionError("an unknown name must raise AttributeError")
