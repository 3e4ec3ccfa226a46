"""Binary attributes of a labeled split and the attribute task pools built from them (numpy only).

The CelebA attribute tasks of Hsu, Levine & Finn (ICLR 2019, "Unsupervised Learning via Meta-Learning",
CACTUs), which LASIUM (Khodadadeh et al., ICLR 2021) evaluates on: a task fixes three attributes and a
boolean value for each; class 0 holds the images with exactly those values, class 1 the images with all
three values negated (so the two classes never share an image). Meta-train, meta-val and meta-test use
disjoint attributes: columns 0-19, 20-29 and 30-39 of ``list_attr_celeba.txt``. A (three attributes,
values) pair is a *pool*; it is kept only when both classes hold more than ``min_exclusive`` images
(10 in the LASIUM authors' ``databases/face_recognition_benchmarks.py``; CACTUs asks for at least K + Q).
Only the half of the 2**3 value choices whose first value is False is enumerated: the other half are the
same pools with the classes swapped, which the sampler draws as a random class order.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import cast

import numpy as np

ORDER = 3  # attributes fixed by one task


@dataclass
class AttributeTable:
    """Boolean attributes of a dataset's (or one split's) images and which of them each split's tasks use.

    ``values`` bool (n, A), row i = image i; ``names`` the A attribute names in file column order;
    ``split_ranges[split]`` = (first, stop) columns the tasks of ``split`` draw from; ``min_exclusive``: a
    class must hold more than this many images; ``split`` is set when the rows are one split's images.
    """

    values: np.ndarray
    names: list[str]
    split_ranges: dict[str, tuple[int, int]]
    min_exclusive: int = 10
    split: str | None = None

    def for_split(self, split: str, index: np.ndarray) -> AttributeTable:
        """The rows ``index`` (the images of ``split``) as that split's table."""
        return AttributeTable(self.values[index], self.names, self.split_ranges, self.min_exclusive, split)

    @property
    def task_range(self) -> tuple[int, int]:
        if self.split is None:
            raise ValueError("this table holds every split; take one with for_split()")
        return self.split_ranges[self.split]

    @property
    def task_attributes(self) -> list[int]:
        return list(range(*self.task_range))

    def describe_range(self, split: str | None = None) -> str:
        """``"30-39 (Sideburns .. Young)"``: the columns of ``split`` (default: this table's split)."""
        first, stop = self.split_ranges[split or self.split or ""]
        return f"{first}-{stop - 1} ({self.names[first]} .. {self.names[stop - 1]})"


@dataclass(frozen=True)
class AttributePool:
    """One task pool: three attribute columns and the values class 0 has (class 1 has them negated)."""

    columns: tuple[int, int, int]
    values: tuple[bool, bool, bool]

    def describe(self, names: list[str], negate: bool = False) -> str:
        """``"Bald=0 & Bangs=1 & Big_Lips=1"`` (``negate``: the other class)."""
        return " & ".join(f"{names[c]}={int(v != negate)}" for c, v in zip(self.columns, self.values))

    def members(self, values: np.ndarray, negate: bool = False) -> np.ndarray:
        """Sorted row indices of the images of class 0 (``negate``: class 1)."""
        want = np.asarray(self.values, bool) != negate
        return np.flatnonzero(np.all(values[:, list(self.columns)] == want, axis=1))


def attribute_pools(table: AttributeTable, min_per_class: int = 0) -> tuple[list[AttributePool], np.ndarray]:
    """Every pool of ``table.task_range`` whose two classes each hold more than ``table.min_exclusive`` and at
    least ``min_per_class`` images, in a fixed order (attribute triples in lexicographic order, then values);
    returns (pools, (len(pools), 2) image counts of class 0 and class 1)."""
    need = max(table.min_exclusive + 1, int(min_per_class))
    values = np.asarray(table.values, bool)
    pools, counts = [], []
    # Value choices with the first attribute False, as the authors' code enumerates them:
    # itertools.product((True, False), repeat=3)[4:].
    choices = list(itertools.product((True, False), repeat=ORDER))[2 ** (ORDER - 1) :]
    weights = 1 << np.arange(ORDER)
    bits = {c: np.ascontiguousarray(values[:, c], dtype=np.uint8) for c in table.task_attributes}
    for columns in itertools.combinations(table.task_attributes, ORDER):
        code = bits[columns[0]].copy()  # bit k = value of columns[k]
        for k, column in enumerate(columns[1:], start=1):
            code |= bits[column] << k
        histogram = np.bincount(code, minlength=2**ORDER)
        for choice in choices:
            positive = int(np.dot(choice, weights))
            negative = (2**ORDER - 1) ^ positive
            n_pos, n_neg = int(histogram[positive]), int(histogram[negative])
            if n_pos >= need and n_neg >= need:
                pools.append(AttributePool(cast(tuple[int, int, int], columns), cast(tuple[bool, bool, bool], choice)))
                counts.append((n_pos, n_neg))
    return pools, np.asarray(counts, np.int64).reshape(-1, 2)
