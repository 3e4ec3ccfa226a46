"""The ``lasium-gen`` batch job: config, shard planning, writer processes, output folder, real episodes, CLI.
Imports :mod:`lasium.generate.models`, :mod:`lasium.generate.synthesis` and the core. Public names:
:mod:`lasium.generate`."""
