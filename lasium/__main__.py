"""``python -m lasium COMMAND [ARGS]``: the console scripts without their ``lasium-`` prefix.

``python -m lasium gen --strategy oc --n-tasks 200`` is ``lasium-gen --strategy oc --n-tasks 200``. The
commands are the package's ``lasium-*`` console scripts, read from its installed metadata, so a new one needs
no change here.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

PREFIX = "lasium-"


def commands() -> dict[str, str]:
    """Command name (without the prefix) → ``module:function`` of its console script."""
    found = entry_points(group="console_scripts")
    return {
        ep.name[len(PREFIX) :]: ep.value
        for ep in found
        if ep.name.startswith(PREFIX) and ep.module.startswith("lasium")
    }


def main(argv: list[str] | None = None) -> None:
    from importlib import import_module

    from lasium import __version__

    argv = sys.argv[1:] if argv is None else argv
    known = commands()
    listing = ", ".join(sorted(known)) or "none found: install lasium (pip install -e .)"
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: python -m lasium COMMAND [ARGS]   (COMMAND: {listing})")
        print("Each command is the console script lasium-COMMAND; add --help after it for its options.")
        sys.exit(0)
    if argv[0] == "--version":
        print(f"lasium {__version__}")
        sys.exit(0)
    name = argv[0]
    if name not in known:
        print(
            f"error: unknown command {name!r}; choose one of {listing} (see python -m lasium --help)", file=sys.stderr
        )
        sys.exit(2)
    module, _, function = known[name].partition(":")
    command = getattr(import_module(module), function)  # a click command
    command(args=argv[1:], prog_name=PREFIX + name)


if __name__ == "__main__":
    main()
