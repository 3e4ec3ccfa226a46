"""The synthesizer's batch sizes, which are part of a set's config because they fix kernel shapes and RNG use.

No torch here: ``lasium-gen --help`` shows them (``--decode-tasks``) without loading the synthesizer.
"""

from __future__ import annotations

DECODE_TASKS = 250
"""Tasks per generator call (padded to this size): part of the config because it fixes kernel shapes.
250 divides the default 1000 tasks per shard, so no call is padded."""

ANCHOR_CHUNK = 8192
"""Candidate tuples drawn per device call; part of the generation config since it fixes the RNG use."""

__all__ = ["ANCHOR_CHUNK", "DECODE_TASKS"]
