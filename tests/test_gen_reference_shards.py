"""A pinned reference shard set: refactors must not change a single byte of what ``lasium-gen`` writes.

The set is small (12 tasks in 2 shards, bundled omniglot-gan, LASIUM-RO, seed 7) and made on the CPU
with an explicit ``--precision fp32``: ``auto`` may change meaning with the processor (bf16 on CPUs with
native bf16), fp32 is fixed. The HDF5 shards also carry the full header (set config and generator
record) as a file attribute, so their digest pins those records too.

The digests were taken on x86-64 with the torch CPU wheel the project pins (``.ci/run``), one set per CPU
capability torch dispatches to (AVX2 and AVX512, both on AMD EPYCs, where they agree): fp32 convolutions may sum
in another order on each and give other bytes (the thread count does not change them). Another capability or
torch build skips, saying so.
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
    "AVX2": {  # AMD EPYC without AVX-512; retaken 2026-12-03 for the folded output convolution (1 pixel in ~60,000
        # moves by one grey level; shard 1 is unchanged)
        "wds": {
            "pin-000000.tar": "cdb05aa415f0eba00c2f9156eb192e5c5d1618f57b8cde78773b422cdc709b42",
            "pin-000001.tar": "9084027e0a2210ba2a58f76b611f1f42e8b4cb49921367e896786fcb03fb5088",
        },
        "hdf5": {
            "pin-000000.h5": "43a353b86eac56adcd440dd01edda4f49057478f8abec0bb8bd4e902fce6b1ea",
            "pin-000001.h5": "a04aca4a18f30e6de47097153817ce1ae8d37d384ce4de9c04ed32b1adae5f9b",
        },
    },
}
# AVX512, taken 2026-12-03 on an AMD EPYC with AVX-512 (with 1 and 2 threads): the AVX2 bytes exactly. (The earlier
# AVX512 pins, from an Intel Sapphire Rapids, predated channels-last generation and the folded output convolution.)
REFERENCE["AVX512"] = REFERENCE["AVX2"]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("container", ["hdf5", "wds"])
def test_reference_shard_set_is_byte_identical(tmp_path: Path, container: str) -> None:
    if sys.platform != "linux" or platform.machine() != "x86_64":
        pytest.skip("digests pinned on x86-64 Linux")
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    if capability not in REFERENCE:
        pytest.skip(
            f"no digests pinned for CPU capability {capability} (pinned: {', '.join(REFERENCE)}); to pin it, run "
            "this test's lasium-gen command for wds and hdf5 on such a CPU and add the files' sha256 to REFERENCE"
        )
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
