"""lasium: a task factory for unsupervised meta-learning (LASIUM, Khodadadeh et al., ICLR 2021).

Stages: ``lasium.data`` (images, real episodes), ``lasium.generate`` (generators, LASIUM task synthesis),
``lasium.shards`` (the task-shard format), ``lasium.train`` (meta-learners), ``lasium.evaluate``
(few-shot benchmarks).

The stages are subpackages of this one (``lasium/generate``, ``lasium/train``, ``lasium/evaluate``,
``lasium/repro``). The version is defined here only (``pyproject.toml`` reads it).
"""

from __future__ import annotations

__version__ = "0.1.0"

import lasium.logs  # noqa: E402,F401 - the one stderr handler of lasium's loggers (lasium/logs.py)
