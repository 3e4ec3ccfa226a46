"""lasium: a task factory for unsupervised meta-learning (LASIUM, Khodadadeh et al., ICLR 2021).

Stages: ``lasium.data`` (images, real episodes), ``lasium.generate`` (generators, LASIUM task synthesis),
``lasium.shards`` (the task-shard format), ``lasium.train`` (meta-learners), ``lasium.evaluate``
(few-shot benchmarks).
"""

__version__ = "0.1.0"
