"""A pinned reference shard set: refactors must not change a single byte of what ``lasium-gen`` writes.

The set is small (12 tasks in 2 shards, bundled omniglot-gan, LASIUM-RO, seed 7) and made on the CPU
with an explicit ``--precision fp32``: ``auto`` may change meaning with the processor (bf16 on CPUs with
native bf16), fp32 is fixed. The HDF5 shards also carry the full header (set config and generator
record) as a file attribute, so their digest pins those records too.

The digests were taken on x86-64 with the torch CPU wheel the project pins (``.ci/run``), one set per CPU
capability torch dispatches to (AVX512 on an Intel Sapphire Rapids, AVX2 on an AMD EPYC): fp32 convolutions
sum in another order on each and give other bytes. Another capability or torch build skips, saying so.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
from pathlib import Path

import pytest

# fp32 bytes depend on the kernels torch dispatches to: pinned per CPU capability (torch.backends.cpu).
REFERENCE = {
    "AVX512": {  # Intel Sapphire Rapids
        "wds": {
            "pin-000000.tar": "85c68ff84cc34d2595fdeff6a252212f441e12c7fdec443f4a4738091a2b52a9",
            "pin-000001.tar": "16bd359f5ae18e0449c0e391f53ade753962889e8647d51f4e1cd64bac8408c8",
        },
        "hdf5": {
            "pin-000000.h5": "8e90a68f3efc8c73a319934da8ba5154efc1a77593b3c75d611b43c8ad01c08c",
            "pin-000001.h5": "59772e6a2b69f4e4494f6698e9808eee8f48b0db07080be8cd76d0bd7b1c8449",
        },
    },
    "AVX2": {  # AMD EPYC without AVX-512
        "wds": {
            "pin-000000.tar": "21f96effbc61497844edfe7d41a3fa364247af7f5ddccfda38c57864caf46fab",
            "pin-000001.tar": "cfa1054300cbcd567a72dd962c1476ecdf6a2dfa71d95d70cfb7871d40cd206c",
        },
        "hdf5": {
            "pin-000000.h5": "584bddbbeb5f8d5d38f784727889d7a0cf845925c5ee08a4c5913b5ad7db8ee1",
            "pin-000001.h5": "147aa7cdf7c4085d148443f5701e7516d38ae4bd47368fc48e1899a85e0de928",
        },
    },
}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("container", ["hdf5", "wds"])
def test_reference_shard_set_is_byte_identical(tmp_path: Path, container: str) -> None:
    if sys.platform != "linux" or platform.machine() != "x86_64":
        pytest.skip("digests pinned on x86-64 Linux")
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    if capability not in REFERENCE:
        pytest.skip(f"no digests pinned for CPU capability {capability} (pinned: {', '.join(REFERENCE)})")
    reference = REFERENCE[capability]
    # The console script itself (beside this interpreter), so the pin holds whatever module it points to.
    script = Path(sys.executable).with_name("lasium-gen")
    if not script.is_file():
        pytest.skip("lasium-gen is not installed beside this interpreter")
    out = tmp_path / container
    cmd = [
        str(script),
        "--strategy",
        "ro",
        "--n-tasks",
        "12",
        "--tasks-per-shard",
        "6",
        "--generator",
        "omniglot-gan",
        "--format",
        container,
        "--out",
        str(out),
        "--name",
        "pin",
        "--device",
        "cpu",
        "--precision",
        "fp32",
        "--seed",
        "7",
        "--workers",
        "0",
        "--quiet",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    got = {name: _sha256(out / name) for name in reference[container]}
    assert got == reference[container]
