"""lasium.train: meta-learners (MAML, first-order MAML, ProtoNets), shard streaming and the trainer.

Depends on the shared core only: it never imports ``lasium.generate`` or ``lasium.evaluate``.
"""
