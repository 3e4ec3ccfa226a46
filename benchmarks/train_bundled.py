"""Fit the two bundled Omniglot generators on a GPU, measure their Fréchet distances, export them into
``generate/models/bundled/<name>/`` (fp16 weights, config, model card, samples; ≤ 8 MB in all).

Run from the repository root on a machine with the Omniglot zips (LASIUM_DATA) and a GPU:

    python benchmarks/train_bundled.py --out runs/bundled

Measured on one H200 (torch 2.11, batch 64, CUDA-graph steps, 24k-image epochs of synthetic 28×28 data):
about 0.5 s per epoch for either model after a first epoch of ~5 s (cuDNN autotuning, graph capture),
so the defaults (GAN 200 epochs ≤ 3 min, VAE 100 epochs ≤ 1.5 min) plus decoding Omniglot and the two
Fréchet-distance runs fit in well under 10 minutes of GPU time.

Each model is trained by the real ``lasium-fit`` command (recorded verbatim in its model card), with a
``--max-minutes`` wall-clock budget so the whole job fits a short GPU allocation; ``--epochs`` is the upper
bound. Then ``benchmarks/bench_fid.py`` measures it and ``export_bundled`` writes the bundled folder.
A killed run can be restarted with the same command: a finished fit is reused, an interrupted one resumed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def lasium_fit() -> list[str]:
    exe = shutil.which("lasium-fit")
    return [exe] if exe else [sys.executable, "-m", "lasium.generate.models.fit_cli"]


def run(cmd: list[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/bundled"), help="where the full checkpoints go")
    parser.add_argument("--gan-epochs", type=int, default=200)
    parser.add_argument("--vae-epochs", type=int, default=100)
    parser.add_argument("--gan-minutes", type=float, default=3.0)
    parser.add_argument("--vae-minutes", type=float, default=1.5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--skip-fid", action="store_true", help="export without measuring Fréchet distances")
    parser.add_argument(
        "--note", default=None, help="training note (markdown) for both model cards, e.g. where they were trained"
    )
    args = parser.parse_args()

    from lasium.checkpoints import CONFIG_FILE
    from lasium.generate import export_bundled
    from lasium.generate.models.checkpoint import STATE_JSON

    for model, epochs, minutes in (
        ("gan", args.gan_epochs, args.gan_minutes),
        ("vae", args.vae_epochs, args.vae_minutes),
    ):
        name = f"omniglot-{model}"
        out = args.out / name
        done = (out / CONFIG_FILE).is_file()
        saved = json.loads((out / CONFIG_FILE).read_text()) if done else {}
        if saved.get("epochs_done", 0) >= epochs or saved.get("stopped_by_time_budget"):
            print(f"{out} already trained; reusing it")
        else:
            cmd = lasium_fit() + [
                "--model",
                model,
                "--dataset",
                "omniglot",
                "--epochs",
                str(epochs),
                "--batch-size",
                str(args.batch_size),
                "--seed",
                str(args.seed),
                "--device",
                args.device,
                "--max-minutes",
                str(minutes),
                "--out",
                str(out),
            ]
            if done and (out / STATE_JSON).is_file():
                cmd.append("--resume")
            run(cmd)
        quality = None
        if not args.skip_fid:
            fid_json = out / "fid.json"
            run(
                [
                    sys.executable,
                    str(REPO / "benchmarks" / "bench_fid.py"),
                    "--generator",
                    str(out),
                    "--device",
                    args.device,
                    "--seed",
                    str(args.seed),
                    "--json-out",
                    str(fid_json),
                ]
            )
            quality = json.loads(fid_json.read_text())
        dest = export_bundled(out, name, quality=quality, note=args.note)
        size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
        print(f"exported {name} to {dest} ({size / 2**20:.2f} MB)")


if __name__ == "__main__":
    main()
