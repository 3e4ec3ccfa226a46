"""The options of one Omniglot reproduction (``lasium-repro omniglot``): a typed dataclass that the command line
fills, that :func:`lasium.repro.omniglot.run` takes, and that serialises to JSON (the work folder records it).

The reproduction is driven from Python the same way as from the shell::

    from lasium.repro import OmniglotOptions, run_omniglot
    run_omniglot(OmniglotOptions(sizes="quick", work=Path("/tmp/rq"), results=Path("/tmp/rq-results")))
"""

from __future__ import annotations

import shlex
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from lasium.errors import ConfigError

from .rows import known_row_names
from .sizes import SIZES, Sizes

MAML_ALGOS = ("maml", "fomaml")


def argv_of(options: Any, *, defaults: Any = None, repeated: tuple[str, ...] = ()) -> list[str]:
    """The command-line arguments that give a dataclass of options: one ``--field-name`` per field not at its
    default (``--flag`` / ``--no-flag`` for booleans, comma-joined tuples unless the field is ``repeated``, nested
    dataclasses flattened and compared with their own default). Required fields are left to the caller."""
    out: list[str] = []
    for f in fields(options):
        value = getattr(options, f.name)
        if defaults is not None:
            default = getattr(defaults, f.name)
        elif f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:
            default = f.default_factory()
        else:
            continue
        if is_dataclass(value):
            out += argv_of(value, defaults=default, repeated=repeated)
            continue
        if value == default:
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            out.append(flag if value else "--no-" + f.name.replace("_", "-"))
        elif isinstance(value, tuple) and f.name in repeated:
            for item in value:
                out += [flag, str(item)]
        elif isinstance(value, tuple):
            out += [flag, ",".join(format(v, "g") if isinstance(v, float) else str(v) for v in value)]
        else:
            out += [flag, format(value, "g") if isinstance(value, float) else str(value)]
    return out


@dataclass(frozen=True)
class OmniglotOptions:
    """What to reproduce, where, and how far (every field is a ``lasium-repro omniglot`` option of the same name)."""

    sizes: str = "gpu"  # a name of SIZES: gpu, cpu (the reference budgets), cpu-reduced, quick
    ablation: bool = False  # also the ablation rows (LASIUM-N + ProtoNets, one ingredient at a time)
    only: tuple[str, ...] = ()  # row keys or families to run (empty: every row, in priority order)
    optional: bool | None = None  # run the optional rows (None: yes at the gpu and cpu sizes)
    fit: bool = False  # fit a fresh GAN with lasium-fit instead of using ``generator``
    fit_minutes: float | None = None  # wall-clock budget of ``fit`` (None: the sizes')
    generator: str = "omniglot-gan"  # lasium-gen --generator when not ``fit``
    vae: str = "omniglot-vae"  # lasium-gen --generator of the LASIUM-VAE rows (a bundled name or a lasium-fit folder)
    maml_algo: str | None = None  # maml (second order) or fomaml for the MAML rows (None: the sizes')
    budget_seconds: float | None = None  # start no row that would not fit; kill every stage at the deadline
    work: Path = Path("runs/repro-omniglot")  # shards, runs, evals and logs
    results: Path = Path("results")  # omniglot.md, omniglot.json and the charts
    device: str = "auto"  # passed to every stage
    data_root: str | None = None  # dataset root of every stage (None: $LASIUM_DATA)
    seed: int = 0  # seed of generation, training and the scratch baseline's initialisation
    eval_seed: int = 0  # episode seed of the evaluation: the same test tasks for every method
    threads: int | None = None  # OMP_NUM_THREADS of every stage (None: unchanged; 1 on a CPU below the gpu sizes)
    eval_workers: int = 1  # lasium-eval --workers of every evaluation (CPU processes; never changes a score)
    keep_shards: bool = False  # keep the shard sets at the end (default: deleted)
    resume: bool = False  # continue a run in ``work``: finished stages are reused, interrupted ones continue
    overwrite: bool = False  # clear an earlier run in ``work`` first
    reuse_results: tuple[Path, ...] = field(default=())  # other results pages whose finished rows a resume takes
    generator_results: tuple[Path, ...] = field(default=())  # pages of another --generator: rows shown here

    # --- checks -------------------------------------------------------------------------------------
    def validate(self) -> OmniglotOptions:
        """Raise :class:`~lasium.errors.ConfigError` (one line: what is wrong, how to fix it) for options that
        contradict each other or name nothing known; return ``self``."""
        if self.sizes not in SIZES:
            raise ConfigError(f"--sizes {self.sizes!r} is unknown; choose one of {', '.join(sorted(SIZES))}")
        unknown = sorted(set(self.only) - set(known_row_names()))
        if unknown:
            raise ConfigError(
                f"--only names unknown rows ({', '.join(unknown)}); rows (or a family of rows): "
                + ", ".join(known_row_names())
            )
        if self.maml_algo is not None and self.maml_algo not in MAML_ALGOS:
            raise ConfigError(f"--maml-algo {self.maml_algo!r} is unknown; choose one of {', '.join(MAML_ALGOS)}")
        if not self.vae.strip():
            raise ConfigError("--vae must name a VAE: a bundled name (omniglot-vae) or a lasium-fit output folder")
        if self.resume and self.overwrite:
            raise ConfigError("--resume and --overwrite contradict each other; give one of them")
        if self.reuse_results and not self.resume:
            raise ConfigError("--reuse-results takes rows into a resumed run; add --resume")
        for name in ("fit_minutes", "budget_seconds"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be positive; got {value:g}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"--threads must be at least 1; got {self.threads}")
        if self.eval_workers < 1:
            raise ConfigError(f"--eval-workers must be at least 1; got {self.eval_workers}")
        return self

    # --- derived ------------------------------------------------------------------------------------
    def stage_sizes(self) -> Sizes:
        """The named sizes with this run's ``fit_minutes`` and ``maml_algo``."""
        changes: dict[str, Any] = {
            k: v for k, v in (("fit_minutes", self.fit_minutes), ("maml_algo", self.maml_algo)) if v is not None
        }
        return replace(SIZES[self.sizes], **changes)

    def runs_optional(self) -> bool:
        """Whether optional rows run when ``only`` does not name them (default: at the gpu and cpu sizes)."""
        return self.optional if self.optional is not None else self.sizes in ("gpu", "cpu")

    # --- serialisation ------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (paths as strings, tuples as lists)."""
        out = asdict(self)
        out["work"], out["results"] = str(self.work), str(self.results)
        out["only"] = list(self.only)
        out["reuse_results"] = [str(p) for p in self.reuse_results]
        out["generator_results"] = [str(p) for p in self.generator_results]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OmniglotOptions:
        """The options :meth:`to_json` wrote (unknown keys are refused, missing ones take their defaults)."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown reproduction options {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        values = dict(data)
        for key in ("work", "results"):
            if key in values:
                values[key] = Path(values[key])
        if "only" in values:
            values["only"] = tuple(values["only"])
        for key in ("reuse_results", "generator_results"):
            if key in values:
                values[key] = tuple(Path(p) for p in values[key])
        return cls(**values)

    def argv(self) -> list[str]:
        """The ``lasium-repro omniglot`` arguments that give these options (the ones not at their default)."""
        return argv_of(self, repeated=("reuse_results", "generator_results"))

    def command_line(self) -> str:
        """``lasium-repro omniglot`` with :meth:`argv` (what a results page records as its driver)."""
        return shlex.join(["lasium-repro", "omniglot", *self.argv()])
