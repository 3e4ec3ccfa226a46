"""Generative models: the Generator protocol, GAN and VAE, their fitting (``lasium-fit``), checkpoints, bundled
and external generators, sample quality. Imports the core only. Public names: :mod:`lasium.generate`."""
