"""Fit the two bundled Omniglot generators on a GPU, measure their Fréchet distances, export them into
``generate/models/bundled/<name>/`` (fp16 weights, config, model card, samples; ≤ 8 MB in all).

Run from the repository root on a machine with the Omniglot zips (LASIUM_DATA) and a GPU:

    python benchmarks/train_bundled.py --out runs/bundled

The defaults are the reference training lengths (GAN 500 epochs, Adam 3e-4; VAE 1000 epochs, Adam 1e-3;
batch 128), with the GAN also kept untrained and after 10, 50, 200 and 400 epochs (``lasium-fit --keep-epochs``: the
snapshots under ``<out>/omniglot-gan/epoch-NNNN/`` are what an accuracy-against-GAN-epochs curve trains on).
Measured on one H200 (torch 2.11, batch 64, CUDA-graph steps, 24k-image epochs of synthetic 28×28 data):
about 0.5 s per epoch for either model after a first epoch of ~5 s (cuDNN autotuning, graph capture), so the
reference lengths take more than one short GPU allocation: each fit has a ``--max-minutes`` budget per call
(``--gan-minutes``, ``--vae-minutes``), and running the same command again continues it (``--resume``) until
``--epochs`` are done. A model is measured and exported only once its fit has reached its epochs.

Each model is trained by the real ``lasium-fit`` command (recorded verbatim in its model card). Then
``benchmarks/bench_fid.py`` measures it (and each kept snapshot: ``epoch-NNNN/fid.json``, summed up in
``fid-by-epoch.json``) and ``export_bundled`` writes the bundled folder.
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
    parser.add_argument("--gan-epochs", type=int, default=500, help="GAN epochs in all [500, the reference]")
    parser.add_argument("--vae-epochs", type=int, default=1000, help="VAE epochs in all [1000, the reference]")
    parser.add_argument("--gan-minutes", type=float, default=4.0, help="GAN training minutes per call [4]")
    parser.add_argument("--vae-minutes", type=float, default=3.0, help="VAE training minutes per call [3]")
    parser.add_argument(
        "--gan-keep-epochs",
        default="0,10,50,200,400",
        help="GAN snapshots to keep (lasium-fit --keep-epochs; 0 = untrained)",
    )
    parser.add_argument("--batch-size", type=int, default=128, help="images per step [128, the reference]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--skip-fid", action="store_true", help="export without measuring Fréchet distances")
    parser.add_argument("--limit", type=int, default=None, help="train on the first N images only (smoke runs)")
    parser.add_argument(
        "--dest", type=Path, default=None, help="where to export [default: the package's bundled/ folder]"
    )
    parser.add_argument(
        "--note", default=None, help="training note (markdown) for both model cards, e.g. where they were trained"
    )
    args = parser.parse_args()

    from lasium.checkpoints import CONFIG_FILE
    from lasium.generate import export_bundled
    from lasium.generate.models.checkpoint import STATE_JSON

    for model, epochs, minutes, keep in (
        ("gan", args.gan_epochs, args.gan_minutes, args.gan_keep_epochs),
        ("vae", args.vae_epochs, args.vae_minutes, ""),
    ):
        name = f"omniglot-{model}"
        out = args.out / name
        done = (out / CONFIG_FILE).is_file()
        saved = json.loads((out / CONFIG_FILE).read_text()) if done else {}
        keep = ",".join(e for e in keep.split(",") if e.strip() and int(e) <= epochs)
        if saved.get("epochs_done", 0) >= epochs:
            print(f"{out} already trained to {saved['epochs_done']} epochs; reusing it")
        else:
            cmd = (
                lasium_fit()
                + [
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
                + (["--keep-epochs", keep] if keep else [])
                + (["--limit", str(args.limit)] if args.limit else [])
            )
            if done and (out / STATE_JSON).is_file():
                cmd.append("--resume")
            run(cmd)
            saved = json.loads((out / CONFIG_FILE).read_text())
            if saved.get("epochs_done", 0) < epochs:
                print(f"{name}: {saved.get('epochs_done')} of {epochs} epochs; run the same command again to go on")
                continue
        quality = None
        if not args.skip_fid:
            by_epoch = {}
            for folder in sorted(out.glob("epoch-*")) + [out]:  # the snapshots, then the final model
                fid_json = folder / "fid.json"
                if not fid_json.is_file():
                    run(
                        [
                            sys.executable,
                            str(REPO / "benchmarks" / "bench_fid.py"),
                            "--generator",
                            str(folder),
                            "--device",
                            args.device,
                            "--seed",
                            str(args.seed),
                            "--json-out",
                            str(fid_json),
                        ]
                    )
                epochs_done = json.loads((folder / CONFIG_FILE).read_text()).get("epochs_done")
                by_epoch[str(epochs_done)] = json.loads(fid_json.read_text())
            (out / "fid-by-epoch.json").write_text(json.dumps(by_epoch, indent=2) + "\n")
            quality = by_epoch[str(saved.get("epochs_done", epochs))]
        dest = export_bundled(out, name, quality=quality, note=args.note, dest_root=args.dest)
        size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
        print(f"exported {name} to {dest} ({size / 2**20:.2f} MB)")


if __name__ == "__main__":
    main()
