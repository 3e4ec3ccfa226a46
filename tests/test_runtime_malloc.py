"""lasium.runtime.keep_freed_memory: glibc keeps freed buffers for reuse; a user's MALLOC_*_ settings win."""

from __future__ import annotations

import ctypes
import os
import platform

import pytest
import torch

from lasium.runtime import keep_freed_memory


def glibc() -> bool:
    try:
        ctypes.CDLL(None).gnu_get_libc_version  # noqa: B018
    except (OSError, AttributeError):
        return False
    return platform.system() == "Linux"


def test_a_users_malloc_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX_", "2")
    assert keep_freed_memory() is False


@pytest.mark.skipif(not glibc(), reason="glibc's mallopt only")
def test_glibc_takes_the_setting_and_numbers_stay(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in [k for k in os.environ if k.startswith("MALLOC_") and k.endswith("_")]:
        monkeypatch.delenv(k)
    x = torch.randn(3, 40, 300, 300, generator=torch.Generator().manual_seed(0))  # 43 MB: over the mmap ceiling
    before = torch.nn.functional.relu(x).sum()
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True  # idempotent
    assert torch.equal(torch.nn.functional.relu(x).sum(), before)
