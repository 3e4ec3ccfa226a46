"""Fit the two bundled Omniglot generators, measure their Fréchet distances, and export them into the package's
``bundled/`` folder (fp16 weights, config, model card, samples; ≤ 8 MB in all): ``lasium-repro bundled``.

Run on a machine with the Omniglot zips (``LASIUM_DATA``) and a GPU::

    lasium-repro bundled --out runs/bundled

The defaults are the authors' training lengths (GAN 500 epochs, Adam 3e-4; VAE 1000 epochs, Adam 1e-3; batch 128;
``docs/reference-facts.md``, "The generators"), with the GAN also kept untrained and after 10, 50, 200 and 400
epochs (``lasium-fit --keep-epochs``: the snapshots under ``<out>/omniglot-gan/epoch-NNNN/`` are what
``lasium-repro epoch-curve`` trains on). Measured on one H200 (torch 2.11, batch 64, CUDA-graph steps, 24k-image
epochs of synthetic 28×28 data): about 0.5 s per epoch for either model after a first epoch of ~5 s (cuDNN
autotuning, graph capture), so the reference lengths take more than one short GPU allocation: each fit has a
wall-clock budget per call (``--gan-minutes``, ``--vae-minutes``), and running the same command again continues
it (``lasium-fit --resume``) until its epochs are done. A model is measured and exported only once its fit has
reached its epochs.

Each model is trained by the real ``lasium-fit`` command (recorded verbatim in its model card). Then its sample
quality is measured (:func:`lasium.generate.sample_quality`; each kept snapshot too: ``epoch-NNNN/fid.json``, summed
up in ``fid-by-epoch.json``) and :func:`lasium.generate.export_bundled` writes the bundled folder.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .stages import tool


@dataclass(frozen=True)
class BundledOptions:
    """The options of ``lasium-repro bundled`` (each a command-line option of the same name)."""

    out: Path = Path("runs/bundled")  # where the full checkpoints go
    gan_epochs: int = 500  # GAN epochs in all (the authors')
    vae_epochs: int = 1000  # VAE epochs in all (the authors')
    gan_minutes: float = 4.0  # GAN training minutes per call
    vae_minutes: float = 3.0  # VAE training minutes per call
    gan_keep_epochs: tuple[int, ...] = (0, 10, 50, 200, 400)  # GAN snapshots to keep (0 = untrained)
    batch_size: int = 128  # images per step (the authors')
    seed: int = 0
    device: str = "auto"
    skip_fid: bool = False  # export without measuring Fréchet distances
    limit: int | None = None  # train on the first N images only (smoke runs)
    dest: Path | None = None  # where to export (None: the package's bundled/ folder)
    note: str | None = None  # training note (markdown) for both model cards


def measure_quality(folder: Path, device: str, seed: int) -> dict[str, Any]:
    """The sample quality of the generator in ``folder`` against Omniglot's test split (the record ``fid.json``
    holds: Fréchet distances, the feature classifier, seconds, device)."""
    from lasium.generate import load_generator, sample_quality
    from lasium.runtime import resolve_device

    start = time.perf_counter()
    dev = resolve_device(device)
    report = sample_quality(load_generator(str(folder), device=dev), "omniglot", seed=seed, device=dev)
    return {
        **report.to_json(),
        "spec": str(folder),
        "seconds": round(time.perf_counter() - start, 1),
        "device": str(dev),
    }


def run(options: BundledOptions) -> list[Path]:
    """Fit (or continue fitting) both models, measure and export each that reached its epochs; return the exported
    folders."""
    from lasium.checkpoint_folder import CONFIG_FILE
    from lasium.generate import STATE_JSON, export_bundled

    exported = []
    for model, epochs, minutes, keep in (
        ("gan", options.gan_epochs, options.gan_minutes, options.gan_keep_epochs),
        ("vae", options.vae_epochs, options.vae_minutes, ()),
    ):
        name = f"omniglot-{model}"
        out = options.out / name
        done = (out / CONFIG_FILE).is_file()
        saved = json.loads((out / CONFIG_FILE).read_text()) if done else {}
        kept = ",".join(str(e) for e in keep if e <= epochs)
        if saved.get("epochs_done", 0) >= epochs:
            print(f"{out} already trained to {saved['epochs_done']} epochs; reusing it")
        else:
            cmd = tool("lasium-fit") + [
                "--model", model, "--dataset", "omniglot", "--epochs", str(epochs),
                "--batch-size", str(options.batch_size), "--seed", str(options.seed), "--device", options.device,
                "--max-minutes", f"{minutes:g}", "--out", str(out),
            ]  # fmt: skip
            cmd += (["--keep-epochs", kept] if kept else []) + (
                ["--limit", str(options.limit)] if options.limit else []
            )
            if done and (out / STATE_JSON).is_file():
                cmd.append("--resume")
            print("+ lasium-fit", " ".join(cmd[len(tool("lasium-fit")) :]), flush=True)
            subprocess.run(cmd, check=True)
            saved = json.loads((out / CONFIG_FILE).read_text())
            if saved.get("epochs_done", 0) < epochs:
                print(f"{name}: {saved.get('epochs_done')} of {epochs} epochs; run the same command again to go on")
                continue
        quality = None
        if not options.skip_fid:
            by_epoch = {}
            for folder in sorted(out.glob("epoch-*")) + [out]:  # the snapshots, then the final model
                fid_json = folder / "fid.json"
                if not fid_json.is_file():
                    fid_json.write_text(json.dumps(measure_quality(folder, options.device, options.seed), indent=2))
                epochs_done = json.loads((folder / CONFIG_FILE).read_text()).get("epochs_done")
                by_epoch[str(epochs_done)] = json.loads(fid_json.read_text())
            (out / "fid-by-epoch.json").write_text(json.dumps(by_epoch, indent=2) + "\n")
            quality = by_epoch[str(saved.get("epochs_done", epochs))]
        dest = export_bundled(out, name, quality=quality, note=options.note, dest_root=options.dest)
        size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
        print(f"exported {name} to {dest} ({size / 2**20:.2f} MB)")
        exported.append(dest)
    return exported
