"""The LASIUM GAN: a DCGAN-style generator/discriminator trained with the non-saturating loss plus the
mode-seeking term of MSGAN (Mao et al., "Mode Seeking Generative Adversarial Networks for Diverse Image
Synthesis", CVPR 2019), as in the LASIUM reference code (Khodadadeh et al., ICLR 2021).

Reference architecture (28×28×1 Omniglot):

* generator: latent 128 → dense 7·7·128 → LeakyReLU(0.2) → 2 × [transposed conv 128, 4×4, stride 2,
  LeakyReLU(0.2)] → conv 7×7 to the image channels → sigmoid;
* discriminator: 3 × [conv 3×3 stride 2 (64, 128, 128), LeakyReLU(0.2)] → global max-pool → dense 1.

Other image sizes (see :func:`gan_architecture`): the generator starts at (H / 2^s, W / 2^s) with s ≥ 2
stride-2 upsampling stages; s grows while the start resolution is even and larger than 8 (32 px → 8×8
start, 2 stages; 64 px → 8×8, 3 stages; 84 px → 21×21, 2 stages; 128 px → 8×8, 4 stages). The dense
layer feeds 128·2^(s−2) channels and each stage halves them, never below 128, so 28 px gets exactly the
reference; the discriminator adds one 256-channel stride-2 conv per extra stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from lasium.errors import ConfigError

from .architecture import ArchitectureRecord, checked_image_shape, register_architecture

GAN_ARCHITECTURE = "lasium-gan-v1"
MODE_SEEKING_EPS = 1e-5  # as in the MSGAN reference implementation


@register_architecture
@dataclass(frozen=True)
class GANArchitecture(ArchitectureRecord):
    """Everything needed to rebuild the generator and discriminator (stored in the checkpoint config).

    The registry's fallback GAN: every image shape that no more specific family (:mod:`.dcgan`) takes.
    """

    latent_dim: int
    image_shape: tuple[int, int, int]  # (H, W, C)
    start_hw: tuple[int, int]
    generator_channels: tuple[int, ...]  # dense channels, then the output channels of each upsampling stage
    discriminator_channels: tuple[int, ...]
    name: str = GAN_ARCHITECTURE

    KIND: ClassVar[str] = "GAN"
    NAME: ClassVar[str] = GAN_ARCHITECTURE
    MODEL: ClassVar[str] = "gan"
    DEFAULT_LATENT: ClassVar[int] = 128

    @classmethod
    def fits(cls, image_shape: tuple[int, int, int]) -> bool:
        return True

    @classmethod
    def for_shape(cls, image_shape: tuple[int, int, int], latent_dim: int) -> GANArchitecture:
        return gan_architecture(image_shape, latent_dim)

    def build(self) -> nn.Module:
        return GANGenerator(self)

    def build_discriminator(self) -> nn.Module:
        return GANDiscriminator(self)


def upsampling_stages(height: int, width: int) -> int:
    """Number of stride-2 stages: 2, plus one more while the start resolution is even and above 8."""
    if height % 4 or width % 4 or min(height, width) < 8:
        raise ConfigError(
            f"the GAN needs image sides divisible by 4 and at least 8 px, got {height}×{width}; "
            "resize the images (e.g. --image-size 28)"
        )
    stages = 2
    h, w = height // 4, width // 4
    while h > 8 and w > 8 and h % 2 == 0 and w % 2 == 0:
        h, w, stages = h // 2, w // 2, stages + 1
    return stages


def gan_architecture(image_shape: tuple[int, int, int], latent_dim: int = 128) -> GANArchitecture:
    """The architecture for images of ``image_shape`` (H, W, C); 28×28×1 gives the LASIUM reference."""
    height, width, channels = checked_image_shape(image_shape, latent_dim)
    stages = upsampling_stages(height, width)
    dense = 128 * 2 ** (stages - 2)
    gen = [dense] + [max(128, dense // 2 ** (i + 1)) for i in range(stages)]
    disc = [64, 128, 128] + [256] * (stages - 2)
    return GANArchitecture(
        latent_dim=latent_dim,
        image_shape=(height, width, channels),
        start_hw=(height >> stages, width >> stages),
        generator_channels=tuple(gen),
        discriminator_channels=tuple(disc),
    )


def conv_as_fold(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` for a stride-1 "same" convolution to few output channels, as one matrix product and a fold.

    Each input position's contribution to every output it touches, ``x · w`` for all k×k kernel taps at once, is
    one (C → C_out·k²) matrix product over the channels-last pixels; ``F.fold`` adds those contributions into the
    outputs (with the kernel flipped, since fold scatters where a convolution gathers). For the GAN's last layer
    (128 channels → 1, 7×7 at 28×28) oneDNN's direct convolution runs at 3-6 GFLOP/s on a CPU, a third of a
    lasium-fit step; this is the same function up to float rounding (tested: one pixel in ~60,000 of a decoded
    Omniglot batch moves by one grey level), and its input gradient comes out channels-last like the layers before
    it. ``benchmarks/bench_fit.py`` on a 2-core AMD EPYC (one thread, the other core busy, one run): a GAN training
    step (batch 64) 1.70x faster than channels-last with ``nn.Conv2d`` (977 against 1,661 ms), decoding one
    lasium-gen call (1,500 images) 1.38x (4.41 against 6.07 s); ``results/bench_fit_cpu.json``.
    """
    n, c, h, w = x.shape
    k = conv.kernel_size[0]
    taps = conv.weight.flip(2, 3).transpose(0, 1).reshape(c, -1)  # (C, C_out·k²), flipped: fold scatters
    pixels = x.permute(0, 2, 3, 1).reshape(n, h * w, c)  # a view when x is channels-last
    contributions = torch.matmul(taps.t(), pixels.transpose(1, 2))  # (n, C_out·k², H·W)
    out = F.fold(contributions, (h, w), kernel_size=k, padding=k // 2)  # "same" (fold_applies)
    return out if conv.bias is None else out + conv.bias.view(1, -1, 1, 1)


def fold_applies(conv: nn.Conv2d) -> bool:
    """Whether :func:`conv_as_fold` computes ``conv``: square odd kernel, stride 1, "same" zero padding, no groups
    or dilation."""
    k = conv.kernel_size
    return (
        k[0] == k[1]
        and k[0] % 2 == 1
        and conv.stride == (1, 1)
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
        and conv.padding in ((k[0] // 2, k[0] // 2), "same")
    )


class GANGenerator(nn.Module):
    """Latent (n, D) → images (n, C, H, W) in [0, 1]."""

    # On a CPU the last convolution (to the image channels) runs as :func:`conv_as_fold`; False keeps
    # ``nn.Conv2d``, the baseline of ``benchmarks/bench_fit.py``.
    cpu_fold_output: ClassVar[bool] = True

    def __init__(self, arch: GANArchitecture):
        super().__init__()
        self.arch = arch
        start_h, start_w = arch.start_hw
        chans = arch.generator_channels
        self.dense = nn.Linear(arch.latent_dim, chans[0] * start_h * start_w)
        ups = []
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            # kernel 4, stride 2, padding 1 doubles the resolution exactly (Keras "same" padding)
            ups += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        self.upsample = nn.Sequential(*ups)
        self.to_image = nn.Conv2d(chans[-1], arch.image_shape[2], 7, padding=3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        start_h, start_w = self.arch.start_hw
        x = F.leaky_relu(self.dense(z), 0.2).view(z.shape[0], self.arch.generator_channels[0], start_h, start_w)
        if self.cpu_fold_output and x.device.type == "cpu" and fold_applies(self.to_image):
            # channels-last from the start: every transposed convolution then reads and writes NHWC, and the fold's
            # pixel matrix is a view (an NCHW start costs two full-size layout copies, 17% of a 1,500-image decode)
            x = self.upsample(x.contiguous(memory_format=torch.channels_last))
            return torch.sigmoid(conv_as_fold(self.to_image, x))
        return torch.sigmoid(self.to_image(self.upsample(x)))


class GANDiscriminator(nn.Module):
    """Images (n, C, H, W) in [0, 1] → one logit per image (n,)."""

    def __init__(self, arch: GANArchitecture):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = arch.image_shape[2]
        for c_out in arch.discriminator_channels:
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x).amax(dim=(2, 3))  # global max-pool
        return self.head(h).squeeze(1)


def mode_seeking_ratio(
    images_a: torch.Tensor, images_b: torch.Tensor, z_a: torch.Tensor, z_b: torch.Tensor
) -> torch.Tensor:
    """MSGAN's ratio d_I(G(z_a), G(z_b)) / d_z(z_a, z_b), both distances mean absolute differences."""
    image_distance = (images_a.float() - images_b.float()).abs().mean()
    latent_distance = (z_a.float() - z_b.float()).abs().mean()
    return image_distance / latent_distance


def mode_seeking_loss(
    images_a: torch.Tensor, images_b: torch.Tensor, z_a: torch.Tensor, z_b: torch.Tensor, eps: float = MODE_SEEKING_EPS
) -> torch.Tensor:
    """The MSGAN term 1 / (ratio + eps): large when two latents collapse onto one image (mode collapse).

    Minimising it pushes the generator to map distant latents to distant images (Mao et al., CVPR 2019,
    Eq. 3, written as a loss the way their reference code does).
    """
    return 1.0 / (mode_seeking_ratio(images_a, images_b, z_a, z_b) + eps)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy: real → 1, fake → 0."""
    return F.softplus(-real_logits.float()).mean() + F.softplus(fake_logits.float()).mean()


def generator_adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss −log D(G(z)) (Goodfellow et al., 2014)."""
    return F.softplus(-fake_logits.float()).mean()


class GANTrainer:
    """One GAN training step at a time; owns the generator, discriminator and both Adam optimizers.

    ``arch`` is any registered GAN family's record (:mod:`.architecture`): the reference net or the DCGAN family;
    the losses and the mode-seeking term are the same for all.

    ``step`` takes the uint8 batch and its noise as tensors (drawn by the caller), does no host sync and
    returns detached loss tensors, so the same code runs eagerly or captured in a CUDA graph.
    """

    kind = "gan"
    loss_names = ("d_loss", "g_loss", "g_adv", "mode_seeking")

    def __init__(self, arch: ArchitectureRecord, lr: float, device: torch.device, ms_weight: float = 1.0):
        self.arch = arch
        self.device = device
        self.ms_weight = float(ms_weight)
        self.model = arch.build()  # what the checkpoint's model.safetensors holds
        self.discriminator = arch.build_discriminator()
        self.model.to(device)
        self.discriminator.to(device)
        cuda = device.type == "cuda"  # fused: one kernel per optimizer step; capturable: CUDA-graph safe
        extra = {"fused": True, "capturable": True} if cuda else {}
        self.optimizers = {
            "generator": torch.optim.Adam(self.model.parameters(), lr=lr, **extra),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=lr, **extra),
        }

    @property
    def extra_modules(self) -> dict[str, nn.Module]:
        """Modules that are training state only (not needed to generate)."""
        return {"discriminator": self.discriminator}

    def train(self) -> None:
        self.model.train()
        self.discriminator.train()

    def noise_shapes(self, batch_size: int) -> list[tuple[int, ...]]:
        """Shapes of the standard-normal tensors one step consumes: the latents z."""
        return [(batch_size, self.arch.latent_dim)]

    def step(self, batch: torch.Tensor, noises: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """One discriminator update then one generator update on the same fake batch.

        ``batch`` (n, C, H, W) uint8 real images, ``noises`` = [z (n, D)].
        """
        real = batch.float() / 255.0
        (z,) = noises
        n = real.shape[0]
        # cache_enabled=False: cached weight casts would be stale under CUDA-graph replay
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda", cache_enabled=False)
        opt_d, opt_g = self.optimizers["discriminator"], self.optimizers["generator"]
        with autocast:
            fake = self.model(z)
            logits = self.discriminator(torch.cat([real, fake.detach().to(real.dtype)]))  # one pass for both halves
            d_loss = discriminator_loss(logits[:n], logits[n:])
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()

        self.discriminator.requires_grad_(False)  # the generator step needs no discriminator gradients
        with autocast:
            g_adv = generator_adversarial_loss(self.discriminator(fake))
            half = n // 2  # first half vs second half: n/2 independent latent pairs, no extra forward pass
            ms = mode_seeking_loss(fake[:half], fake[half : 2 * half], z[:half], z[half : 2 * half])
            g_loss = g_adv + self.ms_weight * ms
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        self.discriminator.requires_grad_(True)
        return {
            "d_loss": d_loss.detach(),
            "g_loss": g_loss.detach(),
            "g_adv": g_adv.detach(),
            "mode_seeking": ms.detach(),
        }

    @torch.no_grad()
    def sample(self, z: torch.Tensor) -> torch.Tensor:
        """Images (n, C, H, W) in [0, 1] for fixed latents, in eval mode."""
        self.model.eval()
        out = self.model(z.to(self.device)).float()
        self.model.train()
        return out
