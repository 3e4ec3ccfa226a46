"""The ``lasium-gen`` batch job: the config every source shares, shard planning, writer processes, output folder,
CLI. Imports :mod:`lasium.generate.sources`, :mod:`lasium.generate.synthesis`, :mod:`lasium.generate.models` and the
core. Public names: :mod:`lasium.generate`."""
