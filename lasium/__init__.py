"""lasium: a task factory for unsupervised meta-learning (LASIUM, Khodadadeh et al., ICLR 2021).

Stages: ``lasium.data`` (images, real episodes), ``lasium.generate`` (generators, LASIUM task synthesis),
``lasium.shards`` (the task-shard format), ``lasium.train`` (meta-learners), ``lasium.evaluate``
(few-shot benchmarks).

The stage folders of the repository (``generate/``, ``train/``, ``evaluate/``) install as ``lasium.generate``,
``lasium.train`` and ``lasium.evaluate`` (``pyproject.toml``); from a source checkout, ``pip install -e .`` maps
them. The version is defined here only (``pyproject.toml`` reads it).
"""

from __future__ import annotations

__version__ = "0.1.0"

import lasium.logs  # noqa: E402,F401 - the one stderr handler of lasium's loggers (lasium/logs.py)
