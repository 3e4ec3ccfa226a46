"""Task sources of ``lasium-gen``: LASIUM's generator (strategies n, ro, oc), real episodes, UMTRA and CACTUs.

One module per kind, each with its own options dataclass; :mod:`lasium.generate.sources.registry` holds them all
(``TASK_SOURCES``) and :mod:`lasium.generate.sources.base` the contract they follow.
"""
