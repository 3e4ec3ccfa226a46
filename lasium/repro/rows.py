"""The rows of the Omniglot reproduction: what each method of ours trains on and how (:class:`Row`), in priority
order (:func:`plan_rows`), the other task sources and the mixture, the ablation, and what ``--only`` selects."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .sizes import SIZES, Sizes

if TYPE_CHECKING:
    from .options import OmniglotOptions

STRATEGY_NAMES = {"n": "N", "ro": "RO", "oc": "OC"}


# Unsupervised task sources other than LASIUM (``lasium-gen --source NAME``, its defaults), and their names on the page.
OTHER_SOURCES = {"umtra": "UMTRA", "cactus": "CACTUs-VAE"}
GENERATOR_SOURCES = tuple(STRATEGY_NAMES)  # sources whose shards a generator makes (LASIUM strategies)
MIXTURE = "mix"  # Row.source of a row that trains on several rows' shard sets (Row.mix)


def maml_name(maml_algo: str) -> str:
    """How the page names the MAML learner of a preset (``maml`` is second order)."""
    return "MAML" if maml_algo == "maml" else "first-order MAML"


@dataclass
class Row:
    """One method of ours: where its tasks come from, how it is trained (or not), and whether it is optional."""

    key: str
    label: str
    algo: str  # protonets | maml | fomaml
    source: str  # n | ro | oc | real | scratch | umtra | cactus | mix
    family: str  # lasium | supervised | scratch | other | ablation
    optional: bool = False
    # Settings that differ from the preset's (ablation rows): tasks, iterations, meta_batch, augment, param (σ/α),
    # precision
    overrides: dict[str, Any] = field(default_factory=dict)
    note: str = ""  # what this row changes (ablation rows)
    # source "mix": (source, weight) of each shard set the run mixes (``lasium-train --shards SET:WEIGHT`` each); every
    # set is the one the row of that source with this row's learner generates, so a set is never generated twice
    mix: tuple[tuple[str, float], ...] = ()
    # the kind of generator a LASIUM row's tasks come from: gan (``--generator``) or vae (``--vae``)
    generator: str = "gan"
    # the ``--generator`` validation picked this recipe on, where it was validated on one GAN only ("": any): a run
    # of another generator lists the row with a hint to run it with that one, in a work and results folder of its own
    validated_with: str = ""


def plan_rows(maml_algo: str) -> list[Row]:
    """Rows in priority order: ProtoNets × {ro, n, oc}, MAML × ro, supervised ProtoNets, scratch; then optional ones."""
    maml_label = maml_name(maml_algo)
    rows = [
        Row(f"protonets-{s}", f"LASIUM-{STRATEGY_NAMES[s]}-GAN + ProtoNets (ours)", "protonets", s, "lasium")
        for s in ("ro", "n", "oc")
    ]
    rows.append(Row("maml-ro", f"LASIUM-RO-GAN + {maml_label} (ours)", maml_algo, "ro", "lasium"))
    rows.append(
        Row("protonets-supervised", "supervised ProtoNets (ours, real train tasks)", "protonets", "real", "supervised")
    )
    rows.append(Row("scratch-protonets", "training from scratch, ProtoNets (ours)", "protonets", "scratch", "scratch"))
    rows.append(Row("scratch-maml", "training from scratch, MAML (ours)", "maml", "scratch", "scratch"))
    rows += [
        Row(f"maml-{s}", f"LASIUM-{STRATEGY_NAMES[s]}-GAN + {maml_label} (ours)", maml_algo, s, "lasium", optional=True)
        for s in ("n", "oc")
    ]
    rows.append(
        Row(
            "maml-supervised",
            f"supervised {maml_label} (ours, real train tasks)",
            maml_algo,
            "real",
            "supervised",
            optional=True,
        )
    )
    return rows + plan_other_sources(maml_algo)


def plan_other_sources(maml_algo: str) -> list[Row]:
    """UMTRA and CACTUs with both learners, then ProtoNets on a LASIUM-N + UMTRA mixture (family ``other``).

    Same budgets as the LASIUM rows: the learner's task count (``gen_tasks_protonets`` / ``gen_tasks_maml``),
    iterations, meta-batch and test tasks. ``--augment auto`` stays as it is: it resolves to ``none`` for these
    shards (``ShardSet.generated`` is False for UMTRA and CACTUs sets), so each source is trained as its authors used
    it; the row records the resolved preset. The mixture row is the exception: see its note.

    Optional, like the other comparison rows (MAML n/oc, supervised MAML): they compare other methods and are not
    part of the LASIUM reproduction the targets measure, and at the cpu preset they add hours (two MAML rows scored on
    1,000 tasks, the CACTUs clustering). So they run by default with --sizes gpu or cpu, after every other row, and
    are skipped by --no-optional and the reduced presets without costing anything (nothing of theirs is planned into
    the other rows); --only selects them by key, or all of them as ``--only other``.
    """
    from lasium.train import DEFAULT_FOR_GENERATED

    maml_label = maml_name(maml_algo)
    rows = []
    for source, name in OTHER_SOURCES.items():
        for prefix, algo, learner in (("maml", maml_algo, maml_label), ("protonets", "protonets", "ProtoNets")):
            rows.append(Row(f"{prefix}-{source}", f"{name} + {learner} (ours)", algo, source, "other", optional=True))
    rows.append(
        Row(
            "protonets-mix-n-umtra",
            "LASIUM-N-GAN + UMTRA mixture (0.5 / 0.5) + ProtoNets (ours)",
            "protonets",
            MIXTURE,
            "other",
            optional=True,
            # auto would mean none for the whole mixture (UMTRA sets are not generated, and the trainer augments a
            # batch, not a source), leaving the LASIUM-N half without the ~20 points its query augmentation is worth.
            overrides=dict(augment=DEFAULT_FOR_GENERATED),
            note=f"--augment {DEFAULT_FOR_GENERATED} on every query, as in the LASIUM-N row (auto would turn it off "
            "for "
            "the whole mixture); UMTRA's queries, already erased and shifted, get it on top",
            mix=(("n", 0.5), ("umtra", 0.5)),
        )
    )
    return rows


VAE = "vae"  # the family (and --only group) of the LASIUM-VAE rows


def plan_vae_rows(maml_algo: str) -> list[Row]:
    """LASIUM-{N, RO, OC} with a VAE, with ProtoNets and with MAML: the paper's VAE rows (Khodadadeh et al.,
    ICLR 2021, Omniglot table).

    The same budgets as the GAN rows of the same learner (tasks, iterations, meta-batch, test tasks); the tasks come
    from ``--vae`` (default the bundled ``omniglot-vae``), whose anchors are encoded real train-split images (the
    real image is member 0 of its class), with the σ/α ``lasium-gen --tuned-for`` gives a VAE. Family ``vae``:
    optional and never in the default plan (a VAE worth scoring needs its fit first, issue 27); ``--only vae``
    runs all six and the :data:`TUNED_VAE_ROWS` (each after the row it tunes), ``--only protonets-n-vae`` one of them.
    """
    maml_label = maml_name(maml_algo)
    rows = [
        Row(
            f"{prefix}-{s}-vae",
            f"LASIUM-{STRATEGY_NAMES[s]}-VAE + {learner} (ours)",
            algo,
            s,
            VAE,
            optional=True,
            generator="vae",
        )
        for prefix, algo, learner in (("protonets", "protonets", "ProtoNets"), ("maml", maml_algo, maml_label))
        for s in ("n", "ro", "oc")
    ]
    for key, sigma in TUNED_VAE_ROWS:  # each right after the row it tunes
        rows.insert(next(i for i, r in enumerate(rows) if r.key == key) + 1, tuned_vae_row(rows, key, sigma))
    return rows


# VAE rows at the σ validation picked instead of the authors' (issue 27): LASIUM-N-VAE + ProtoNets at σ 0.5 scores
# 89.32 ± 0.48 / 96.39 ± 0.21 on validation tasks against 83.35 ± 0.59 / 93.91 ± 0.30 at the authors' σ 2.0
# (+5.97 ± 0.76 / +2.48 ± 0.37; 4,000 tasks, 1,000 iterations x 4; results/levers/vae-n-sigma).
TUNED_VAE_ROWS = (("protonets-n-vae", 0.5),)


def tuned_vae_row(rows: list[Row], key: str, sigma: float) -> Row:
    """The VAE row ``key`` of ``rows`` with tasks generated at ``lasium-gen --sigma sigma`` (its own shard set),
    under a key and label that say the σ; the same budgets, learner and test tasks."""
    from lasium.generate import default_parameter

    row = next(r for r in rows if r.key == key)
    authors = default_parameter(row.source, row.generator, "protonets" if row.algo == "protonets" else "maml")
    return replace(
        row,
        key=f"{key}-sigma{sigma:g}",
        label=row.label.removesuffix(" (ours)") + f", σ {sigma:g} (ours)",
        overrides=dict(param=sigma),
        note=f"σ {sigma:g} (the authors': {authors:g}), the value validation picked (results/levers/vae-n-sigma)",
    )


def select_rows(rows: list[Row], only: Collection[str]) -> list[Row]:
    """``--only``: rows named by key, or every row of a named family (``other``, ``lasium``, ...), in priority order;
    every row when ``only`` is empty."""
    if not only:
        return rows
    names = set(only)
    return [r for r in rows if r.key in names or r.family in names]


def only_names(rows: list[Row]) -> list[str]:
    """What ``--only`` accepts: every row key and every family name."""
    return [r.key for r in rows] + sorted({r.family for r in rows})


def known_row_names() -> list[str]:
    """Every name ``--only`` accepts at any sizes (the ablation and longer-MAML keys are the same at every size)."""
    from .longer_rows import plan_longer_rows  # it builds on Row: imported when called, not at import (a cycle)

    return only_names(
        plan_rows("maml") + plan_longer_rows(SIZES["cpu"]) + plan_vae_rows("maml") + plan_ablation(SIZES["cpu"])
    )


def reference_sigma_protonets() -> float:
    """The authors' GAN-ProtoNets σ for LASIUM-N (``docs/reference-facts.md``, "Reference σ and α"), before our
    sweep moved it."""
    from lasium.generate import REFERENCE_PARAMETERS

    return REFERENCE_PARAMETERS["protonets"]["gan"]["n"]


def plan_ablation(sizes: Sizes, native_bf16: bool = True) -> list[Row]:
    """LASIUM-N + ProtoNets from the earlier CPU configuration to this one, one ingredient at a time.

    The last ingredient (bf16) gives exactly the main ``protonets-n`` row, which the page uses as the final step.
    Steps whose ingredient changes nothing (a tuned value equal to the reference) are left out. Without native
    bf16 (``--precision auto`` = fp32) the "+ best augmentation" step would be the main row run a second time
    (hours of a CPU core), so the main row stands for that step as well.
    """
    from lasium.generate import default_parameter
    from lasium.train import DEFAULT_FOR_GENERATED

    tuned_sigma = default_parameter("n", "gan", "protonets")
    iterations, meta_batch, tasks = sizes.learner_budget("protonets")
    full = dict(tasks=tasks, iterations=iterations, meta_batch=meta_batch)
    # The earlier configuration at the cpu preset: 2,000 tasks, 1,000 iterations x 8 (each task seen 4 times).
    earlier = dict(tasks=max(8, tasks // 16), iterations=max(2, iterations // 8), meta_batch=2 * meta_batch)
    drawn = earlier["iterations"] * earlier["meta_batch"]
    steps: list[tuple[str, str, dict[str, Any]]] = [
        (
            "0-earlier",
            f"the earlier CPU configuration: {earlier['tasks']:,} tasks reused, no augmentation, fp32",
            dict(earlier, augment="none", param=reference_sigma_protonets(), precision="fp32"),
        ),
        ("1-shift5", "+ query shift (shift5)", dict(augment="shift5")),
        ("2-distinct", f"+ distinct tasks ({drawn:,} generated, each seen once)", dict(tasks=drawn)),
        (
            "3-budget",
            f"+ reference budget ({full['iterations']:,} iterations x {full['meta_batch']} = "
            f"{full['iterations'] * full['meta_batch']:,} distinct tasks)",
            full,
        ),
    ]
    if tuned_sigma != reference_sigma_protonets():
        steps.append(
            (
                "4-sigma",
                f"+ tuned σ ({tuned_sigma:g} instead of {reference_sigma_protonets():g})",
                dict(param=tuned_sigma),
            )
        )
    if DEFAULT_FOR_GENERATED != "shift5" and native_bf16:
        steps.append(
            ("5-augment", f"+ best augmentation ({DEFAULT_FOR_GENERATED})", dict(augment=DEFAULT_FOR_GENERATED))
        )
    rows: list[Row] = []
    settings: dict[str, Any] = {}
    for key, note, change in steps:
        settings = {**settings, **change}
        rows.append(
            Row(
                f"ablation-{key}",
                f"LASIUM-N-GAN + ProtoNets, {note}",
                "protonets",
                "n",
                "ablation",
                overrides=dict(settings),
                note=note,
            )
        )
    return rows


def chosen_rows(options: OmniglotOptions, sizes: Sizes, native_bf16: bool = True) -> list[Row]:
    """The rows this invocation runs, in priority order (``only``, ``optional``, ``ablation``); ``native_bf16``:
    whether ``--precision auto`` means bf16 on this device (see :func:`plan_ablation`)."""
    from .longer_rows import plan_longer_rows  # it builds on Row: imported when called, not at import (a cycle)

    rows = plan_rows(sizes.maml_algo) + plan_longer_rows(sizes)
    # Rows named by --only run whatever the sizes; else optional rows run with --optional (default: gpu and cpu sizes).
    # The VAE rows run only when --only names them (or their family, vae).
    if options.only:
        rows = select_rows(rows + plan_vae_rows(sizes.maml_algo), options.only)
        if options.optional is False:
            rows = [r for r in rows if not r.optional]
    elif not options.runs_optional():
        rows = [r for r in rows if not r.optional]
    if options.ablation:  # with --only, the ablation steps it names (a key, or the family "ablation")
        rows += select_rows(plan_ablation(sizes, native_bf16), options.only)
    return rows
