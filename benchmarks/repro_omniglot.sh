#!/usr/bin/env bash
# Reproduce LASIUM on Omniglot end to end: fit or load the GAN, generate tasks (n, ro, oc), train ProtoNets and
# MAML, evaluate 1- and 5-shot with baselines, write results/omniglot.md + omniglot.json + PNGs.
#
#   benchmarks/repro_omniglot.sh                      # GPU sizes, bundled omniglot-gan
#   benchmarks/repro_omniglot.sh --fit                # fit a fresh GAN first
#   benchmarks/repro_omniglot.sh --quick --fit        # tiny sizes, a few minutes on a CPU
#   benchmarks/repro_omniglot.sh --budget-seconds 360 # skip rows that no longer fit, always write the page
#
# All options: benchmarks/repro_omniglot.sh --help (the stage sizes are the Sizes fields in repro_omniglot.py).
set -euo pipefail
exec "${PYTHON:-python3}" "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/repro_omniglot.py" "$@"
