"""Sample quality of a generator: Fréchet distance to the real test split, and the real train-vs-test floor.

Features come from a conv4 classifier trained on the labeled train split (cached in $LASIUM_CACHE/quality;
see lasium.generate.models.quality). Lower is better; a good generator comes close to the floor.

Examples:
    python benchmarks/bench_fid.py --generator omniglot-gan
    python benchmarks/bench_fid.py --generator runs/vae --device cuda --json-out results/fid-vae.json
    python benchmarks/bench_fid.py --generator mygan:build --latent-dim 512 --output-range "[-1,1]"
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from lasium.cli_support import user_errors
from lasium.generate import load_generator, sample_quality
from lasium.runtime import resolve_device


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--generator", "spec", required=True, help="Bundled name, checkpoint folder, TorchScript file or module:factory."
)
@click.option(
    "--dataset",
    default="omniglot",
    show_default=True,
    help="omniglot or imagefolder:PATH (needs train and test splits).",
)
@click.option("--samples", type=int, default=None, help="Images per side (default: the whole test split).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--classifier-epochs", type=int, default=5, show_default=True, help="Epochs of the feature classifier.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--data-root", default=None, help="Dataset root (default $LASIUM_DATA).")
@click.option("--image-size", type=int, default=None, help="Resize dataset images (must match the generator).")
@click.option("--latent-dim", type=int, default=None, help="Latent size of an external generator.")
@click.option("--output-range", default=None, help="'[0,1]' or '[-1,1]' for an external generator.")
@click.option("--json-out", type=click.Path(path_type=Path), default=None, help="Also write the figures as JSON here.")
@user_errors
def main(
    spec, dataset, samples, seed, classifier_epochs, device, data_root, image_size, latent_dim, output_range, json_out
) -> None:
    """Print the Fréchet distances of a generator (generated vs test, and the train-vs-test floor)."""
    start = time.perf_counter()
    dev = resolve_device(device)
    generator = load_generator(spec, device=dev, latent_dim=latent_dim, output_range=output_range)
    report = sample_quality(
        generator,
        dataset,
        num_samples=samples,
        seed=seed,
        classifier_epochs=classifier_epochs,
        device=dev,
        data_root=data_root,
        image_size=image_size,
    )
    result = {**report.to_json(), "spec": spec, "seconds": round(time.perf_counter() - start, 1), "device": str(dev)}
    click.echo(
        f"generator {spec} ({generator.kind}, latent {generator.latent_dim}), {report.num_samples} images per side"
    )
    click.echo(f"  Fréchet distance, generated vs real test split: {report.fd_generated_vs_test:9.3f}")
    click.echo(f"  Fréchet distance, real train vs real test (floor): {report.fd_train_vs_test:9.3f}")
    click.echo(
        f"  feature classifier: {report.feature_extractor}, train accuracy "
        f"{report.classifier.get('train_accuracy', float('nan')):.3f}"
    )
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=2) + "\n")
        click.echo(f"wrote {json_out}")


if __name__ == "__main__":
    main()
