"""The models shipped inside the package (``omniglot-gan``, the default; ``omniglot-gan-h200``; ``omniglot-vae``)
and how one is exported.

A bundled model is a generator checkpoint folder under ``bundled/`` beside this module, with float16
weights, a model card and a sample grid; :func:`lasium.generate.load_generator` takes its name.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import torch

from lasium.checkpoint_folder import CONFIG_FILE, WEIGHTS_FILE
from lasium.errors import CheckpointError, ConfigError
from lasium.safe_io import file_sha256, write_json_atomic

from .checkpoint import CHECKPOINT_FORMAT, load_checkpoint, save_model_weights

BUNDLED_ROOT = Path(__file__).resolve().parent / "bundled"
BUNDLED_NAMES = ("omniglot-gan", "omniglot-gan-h200", "omniglot-vae")
BUNDLED_BUDGET_BYTES = 8 * 1024 * 1024  # all bundled models together ship inside the wheel
_BUNDLED_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def is_bundled_name(name: str) -> bool:
    """A known bundled name, or any exported folder name under ``bundled/``."""
    return name in BUNDLED_NAMES or (bool(_BUNDLED_NAME.match(name)) and (BUNDLED_ROOT / name / WEIGHTS_FILE).is_file())


def bundled_folder(name: str, root: Path | None = None) -> Path:
    """The folder of bundled model ``name``; a clear one-line error when it has not been exported yet."""
    folder = (root or BUNDLED_ROOT) / name
    if not (folder / WEIGHTS_FILE).is_file():
        model = name.rsplit("-", 1)[-1]
        raise CheckpointError(
            f"bundled model {name!r} has not been exported into this installation; produce it with "
            f"`lasium-repro bundled` (GPU, fits and exports both models) or `lasium-fit --model {model} "
            f'--dataset omniglot --out DIR` then `python -c "from lasium.generate import export_bundled; '
            f"export_bundled('DIR', '{name}')\"`, or pass a checkpoint folder instead"
        )
    return folder


def export_bundled(
    checkpoint_dir: str | Path,
    name: str,
    *,
    quality: dict[str, Any] | None = None,
    note: str | None = None,
    dest_root: str | Path | None = None,
) -> Path:
    """Export a lasium-fit checkpoint as bundled model ``name``: fp16 weights, config, model card, samples.

    ``quality`` is the JSON written by ``benchmarks/bench_fid.py`` (Fréchet distances), quoted in the card;
    ``note`` (markdown) is printed in the card as its "Training note" (how and where it was trained, what is weak).
    Refuses an export that would push all bundled models over 8 MB.
    """
    from lasium.previews import image_grid, save_png

    if not _BUNDLED_NAME.match(name):
        raise ConfigError(f"bundled name {name!r} must be lowercase letters, digits and dashes")
    ckpt = load_checkpoint(Path(checkpoint_dir), device="cpu")
    dest = Path(dest_root or BUNDLED_ROOT) / name
    dest.mkdir(parents=True, exist_ok=True)
    weights = save_model_weights(
        dest, ckpt.model, {"format": CHECKPOINT_FORMAT, "dtype": "float16"}, dtype=torch.float16
    )
    config = {**ckpt.config, "name": name}
    config["bundled"] = {
        "dtype": "float16",
        "source_weights_sha256": file_sha256(ckpt.weights_path),
        "quality": quality,
    }
    if note:
        config["bundled"]["note"] = note.strip()
    write_json_atomic(dest / CONFIG_FILE, config)

    # The grid shows what the fp16 weights (re-loaded as a user would) actually produce.
    model: Any = load_checkpoint(dest).model  # a GAN generator, or a VAE whose decoder makes the images
    z = torch.randn(64, ckpt.config["latent_dim"], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        images = (model(z) if ckpt.config["kind"] == "gan" else model.decoder(z)).float()
    save_png(image_grid(images.permute(0, 2, 3, 1).numpy(), columns=8, scale=2), dest / "samples.png")
    (dest / "MODEL_CARD.md").write_text(model_card(config, name, file_sha256(weights)))

    total = sum(p.stat().st_size for p in Path(dest_root or BUNDLED_ROOT).rglob("*") if p.is_file())
    if total > BUNDLED_BUDGET_BYTES:
        shutil.rmtree(dest)
        raise CheckpointError(
            f"bundled models would take {total / 2**20:.1f} MB, over the 8 MB budget; export a smaller model"
        )
    return dest


def model_card(config: dict[str, Any], name: str, weights_sha256: str) -> str:
    """Markdown model card from a checkpoint config (what was trained, on what, how, and how well)."""
    data = config.get("data") or {}
    fit = config.get("fit") or {}
    quality = (config.get("bundled") or {}).get("quality") or {}
    losses = ", ".join(f"{k} {v:.4g}" for k, v in (config.get("final_losses") or {}).items()) or "n/a"
    commands = "\n".join(config.get("commands") or ["(not recorded)"])
    if quality:
        fd = (
            f"| generated vs real test split | {quality.get('fd_generated_vs_test', float('nan')):.3f} |\n"
            f"| real train split vs real test split (floor) | {quality.get('fd_train_vs_test', float('nan')):.3f} |\n\n"
            f"{quality.get('num_samples', '?')} images per side; features: {quality.get('feature_extractor', '?')}."
        )
    else:
        fd = "| not measured | run `python benchmarks/bench_fid.py --generator " + name + "` |"
    budget = fit.get("max_minutes")
    stopped = " (stopped by the --max-minutes budget)" if config.get("stopped_by_time_budget") else ""
    note = (config.get("bundled") or {}).get("note")
    note_section = f"## Training note\n{note}\n\n" if note else ""
    return f"""# {name}

A LASIUM {config["kind"].upper()} generator (Khodadadeh et al., "Unsupervised Meta-Learning through Latent-Space
Interpolation in Generative Models", ICLR 2021), trained by `lasium-fit` on the **unlabeled train split**
of `{data.get("dataset", "?")}` and shipped with lasium (weights stored as float16).

| field | value |
|---|---|
| kind | {config["kind"]} |
| architecture | `{config["architecture"].get("name")}` |
| latent size | {config["latent_dim"]} |
| image shape (H, W, C) | {tuple(config["image_shape"])} |
| training images | {data.get("num_images", "?")} (fingerprint `{data.get("fingerprint", "?")}`) |
| epochs | {config.get("epochs_done", "?")} of {fit.get("epochs", "?")}{stopped} |
| batch size / learning rate | {fit.get("batch_size", "?")} / {fit.get("lr", "?")} |
| seed | {fit.get("seed", "?")} |
| wall-clock budget | {f"{budget} min" if budget else "none"} |
| device | {config.get("device", "?")} |
| training time | {config.get("train_seconds", 0.0):.1f} s ({config.get("images_per_second", 0.0):.0f} images/s) |
| final losses (last epoch means) | {losses} |
| weights sha256 (model.safetensors) | `{weights_sha256}` |

{note_section}## Command
```
{commands}
```

## Sample quality (Fréchet distance in the feature space of a conv4 classifier, lower is better)
| comparison | Fréchet distance |
|---|---|
{fd}

## Samples
![64 samples from fixed latents](samples.png)

Load it with `lasium.generate.load_generator("{name}")` or `lasium-gen --generator {name}`.
"""
