"""LASIUM task synthesis on the device: anchors, in-class strategies, the VAE anchor pool, the synthesizer and its
host staging; UMTRA queries and CACTUs partitions.
Imports :mod:`lasium.generate.models` (the protocol) and the core. Public names: :mod:`lasium.generate`."""
