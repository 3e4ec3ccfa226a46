"""The LASIUM VAE (Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014), Omniglot reference
architecture of LASIUM (Khodadadeh et al., ICLR 2021):

* encoder: four conv blocks (64 channels, 3×3, batch norm, ReLU; the first two with stride 2, so
  28 → 14 → 7) → dense to a latent of 20 (one head for the mean, one for the log-variance);
* decoder, mirrored: dense 7·7·64 + ReLU → four transposed-conv blocks (64 channels, batch norm, ReLU;
  the last two with stride 2, so 7 → 14 → 28) → 3×3 conv to the image channels (Bernoulli logits);
* loss: Bernoulli reconstruction (binary cross-entropy, summed over pixels) plus KL(q(z|x) ‖ N(0, I)),
  averaged over the batch.

Other sizes use the GAN's stage rule (:func:`lasium.generate.models.gan.upsampling_stages`): s stride-2 stages
and max(4, s) blocks on each side, so the start resolution is (H / 2^s, W / 2^s).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .architecture import ArchitectureRecord, checked_image_shape, register_architecture
from .gan import upsampling_stages

VAE_ARCHITECTURE = "lasium-vae-v1"


@register_architecture
@dataclass(frozen=True)
class VAEArchitecture(ArchitectureRecord):
    """Everything needed to rebuild the encoder and decoder (stored in the checkpoint config).

    The registry's fallback VAE: every image shape that no more specific family (:mod:`.vae84`) takes.
    """

    latent_dim: int
    image_shape: tuple[int, int, int]  # (H, W, C)
    start_hw: tuple[int, int]
    blocks: int
    downsampling: int  # how many of the blocks have stride 2
    width: int = 64
    name: str = VAE_ARCHITECTURE

    KIND: ClassVar[str] = "VAE"
    NAME: ClassVar[str] = VAE_ARCHITECTURE
    MODEL: ClassVar[str] = "vae"
    DEFAULT_LATENT: ClassVar[int] = 20

    @classmethod
    def fits(cls, image_shape: tuple[int, int, int]) -> bool:
        return True

    @classmethod
    def for_shape(cls, image_shape: tuple[int, int, int], latent_dim: int) -> VAEArchitecture:
        return vae_architecture(image_shape, latent_dim)

    def build(self) -> nn.Module:
        return VAE(self)


def vae_architecture(image_shape: tuple[int, int, int], latent_dim: int = 20) -> VAEArchitecture:
    """The architecture for images of ``image_shape`` (H, W, C); 28×28×1 gives the LASIUM reference."""
    height, width, channels = checked_image_shape(image_shape, latent_dim)
    stages = upsampling_stages(height, width)
    return VAEArchitecture(
        latent_dim=latent_dim,
        image_shape=(height, width, channels),
        start_hw=(height >> stages, width >> stages),
        blocks=max(4, stages),
        downsampling=stages,
    )


def _block(conv: nn.Module, width: int) -> nn.Sequential:
    return nn.Sequential(conv, nn.BatchNorm2d(width), nn.ReLU())


class VAEEncoder(nn.Module):
    """Images (n, C, H, W) in [0, 1] → (mean, log-variance), each (n, D)."""

    def __init__(self, arch: VAEArchitecture):
        super().__init__()
        w, c_in = arch.width, arch.image_shape[2]
        blocks = []
        for i in range(arch.blocks):
            stride = 2 if i < arch.downsampling else 1
            blocks.append(_block(nn.Conv2d(c_in if i == 0 else w, w, 3, stride=stride, padding=1), w))
        self.features = nn.Sequential(*blocks)
        flat = w * arch.start_hw[0] * arch.start_hw[1]
        self.mean = nn.Linear(flat, arch.latent_dim)
        self.log_var = nn.Linear(flat, arch.latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x).flatten(1)
        return self.mean(h), self.log_var(h)


class VAEDecoder(nn.Module):
    """Latents (n, D) → images (n, C, H, W) in [0, 1]; :meth:`logits` gives the Bernoulli logits."""

    def __init__(self, arch: VAEArchitecture):
        super().__init__()
        self.arch = arch
        w = arch.width
        self.dense = nn.Linear(arch.latent_dim, w * arch.start_hw[0] * arch.start_hw[1])
        blocks = []
        for i in range(arch.blocks):  # mirror of the encoder: stride-1 blocks first, stride-2 blocks last
            if i < arch.blocks - arch.downsampling:
                conv: nn.Module = nn.ConvTranspose2d(w, w, 3, stride=1, padding=1)
            else:
                conv = nn.ConvTranspose2d(w, w, 4, stride=2, padding=1)
            blocks.append(_block(conv, w))
        self.upsample = nn.Sequential(*blocks)
        self.to_image = nn.Conv2d(w, arch.image_shape[2], 3, padding=1)

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.dense(z)).view(z.shape[0], self.arch.width, *self.arch.start_hw)
        return self.to_image(self.upsample(h))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(z))


class VAEModel(nn.Module):
    """What every VAE family's model is: ``encoder`` (images → mean, log-variance) and ``decoder`` (latents →
    images in [0, 1], with ``logits``); the checkpoint's ``model.safetensors`` holds its state dict."""

    encoder: nn.Module
    decoder: nn.Module


class VAE(VAEModel):
    """Encoder + decoder of the reference family."""

    def __init__(self, arch: VAEArchitecture):
        super().__init__()
        self.arch = arch
        self.encoder = VAEEncoder(arch)
        self.decoder = VAEDecoder(arch)


def vae_loss(
    logits: torch.Tensor, target: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(reconstruction, KL), each summed over dimensions and averaged over the batch (negative ELBO = sum)."""
    n = target.shape[0]
    recon = F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="sum") / n
    mean, log_var = mean.float(), log_var.float()
    kl = -0.5 * torch.sum(1.0 + log_var - mean.pow(2) - log_var.exp()) / n
    return recon, kl


class VAETrainer:
    """One VAE training step at a time (reparameterisation trick, Adam), for any registered VAE family."""

    kind = "vae"
    loss_names = ("loss", "reconstruction", "kl")

    def __init__(self, arch: ArchitectureRecord, lr: float, device: torch.device):
        self.arch = arch
        self.device = device
        self.model = arch.build().to(device)
        extra = {"fused": True, "capturable": True} if device.type == "cuda" else {}
        self.optimizers = {"vae": torch.optim.Adam(self.model.parameters(), lr=lr, **extra)}

    @property
    def extra_modules(self) -> dict[str, nn.Module]:
        return {}

    def train(self) -> None:
        self.model.train()

    def noise_shapes(self, batch_size: int) -> list[tuple[int, ...]]:
        """Shapes of the standard-normal tensors one step consumes: the reparameterisation noise."""
        return [(batch_size, self.arch.latent_dim)]

    def step(self, batch: torch.Tensor, noises: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """One update on ``batch`` (n, C, H, W) uint8 with ``noises`` = [eps (n, D)] (no host sync)."""
        real = batch.float() / 255.0
        (eps,) = noises
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda", cache_enabled=False):
            mean, log_var = self.model.encoder(real)
            z = mean.float() + torch.exp(0.5 * log_var.float()) * eps
            logits = self.model.decoder.logits(z)
            recon, kl = vae_loss(logits, real, mean, log_var)
            loss = recon + kl
        opt = self.optimizers["vae"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.detach(), "reconstruction": recon.detach(), "kl": kl.detach()}

    @torch.no_grad()
    def sample(self, z: torch.Tensor) -> torch.Tensor:
        self.model.eval()
        out = self.model.decoder(z.to(self.device)).float()
        self.model.train()
        return out

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """Decode the posterior mean of each image (eval mode)."""
        self.model.eval()
        mean, _ = self.model.encoder(images.to(self.device))
        out = self.model.decoder(mean).float()
        self.model.train()
        return out
