"""StackGAN-v1's Stage-I and Stage-II networks and training iteration in PyTorch, for the A/B
benchmark (bench_torch_ab.py) only: training never imports it.

Layer for layer what stackgan/models builds in Keras (blocks.py, conditioning.py,
discriminator_head.py, stage1.py, stage2.py) and what ConditionalGAN.train_step does, so that
the two frameworks time the same arithmetic:
- the same layers, kernel sizes, strides, channel counts and biases (a conv followed by
  BatchNorm has none); Keras' "same" padding of the 4x4 stride-2 convs on even sizes is 1 on
  every side, as here;
- DCGAN initialisation (weights N(0, 0.02), BatchNorm gamma N(1, 0.02), biases 0), BatchNorm
  momentum 0.9 in Keras' sense (0.1 in PyTorch's), epsilon 1e-5;
- float32 where Keras pins it under mixed precision: mu, log_sigma, c, the tanh images and the
  logit layers;
- Stage-I's fc output is reshaped channels-first here, channels-last in Keras: the same units
  in another order, which changes nothing a benchmark sees.
Not mirrored (the bench refuses them): Stage-II's residual output and PT's unconditional logit.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LEAKY_SLOPE = 0.2
SEED_SIZE = 4  # Stage-I's fc output is a 4x4 map
ENCODER_DOWNSAMPLING = 4  # Stage-II's encoder: 64x64 -> 16x16
BN_MOMENTUM = 0.1  # Keras' momentum 0.9: new = 0.9 old + 0.1 batch
BN_EPSILON = 1e-5


def _steps(small: int, large: int) -> int:
    steps = round(math.log2(large / small))
    if small * 2**steps != large:
        raise ValueError(f"{large} is not {small} times a power of 2")
    return steps


def conv(cin: int, cout: int, kernel: int, stride: int = 1, *, bias: bool) -> nn.Conv2d:
    # Keras "same": 3x3 and 1x1 stride 1 pad (k - 1) / 2; 4x4 stride 2 on an even size pads 1
    return nn.Conv2d(cin, cout, kernel, stride, padding=(kernel - 1) // 2, bias=bias)


def batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPSILON, momentum=BN_MOMENTUM)


def up_block(cin: int, cout: int, *, activate: bool = True) -> nn.Sequential:
    """Nearest-neighbour x2, 3x3 conv, BatchNorm, ReLU (left out before a bottleneck)."""
    layers = [nn.Upsample(scale_factor=2, mode="nearest"), conv(cin, cout, 3, bias=False)]
    layers += [batch_norm(cout), nn.ReLU()] if activate else [batch_norm(cout)]
    return nn.Sequential(*layers)


def down_block(cin: int, cout: int, *, normalize: bool = True) -> nn.Sequential:
    """4x4 stride-2 conv, BatchNorm (not on the first block), LeakyReLU(0.2)."""
    layers = [conv(cin, cout, 4, 2, bias=not normalize)]
    layers += [batch_norm(cout)] if normalize else []
    return nn.Sequential(*layers, nn.LeakyReLU(LEAKY_SLOPE))


class Residual(nn.Module):
    """ReLU(x + body(x))."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x):
        return F.relu(x + self.body(x))


def residual_block(c: int) -> Residual:
    """Stage-II G: x + BN(conv3(ReLU(BN(conv3(x))))), then ReLU."""
    return Residual(
        nn.Sequential(
            conv(c, c, 3, bias=False),
            batch_norm(c),
            nn.ReLU(),
            conv(c, c, 3, bias=False),
            batch_norm(c),
        )
    )


def bottleneck_block(c: int) -> Residual:
    """TF Stage-I G's residual bottleneck: 1x1 -> C/4, 3x3, 3x3 -> C, each with BatchNorm."""
    s = max(1, c // 4)
    return Residual(
        nn.Sequential(
            conv(c, s, 1, bias=False),
            batch_norm(s),
            nn.ReLU(),
            conv(s, s, 3, bias=False),
            batch_norm(s),
            nn.ReLU(),
            conv(s, c, 3, bias=False),
            batch_norm(c),
        )
    )


def tile(vector, size: int):
    """[B, C] -> [B, C, size, size]."""
    return vector[:, :, None, None].expand(-1, -1, size, size)


class ConditioningAugmentation(nn.Module):
    """(embedding [B,E], eps [B,Ng]) -> (c, mu, log_sigma), float32 [B,Ng] each."""

    def __init__(self, embedding_dim: int, ca_dim: int, activation: str):
        super().__init__()
        self.ca_dim, self.activation = ca_dim, activation
        self.fc = nn.Linear(embedding_dim, 2 * ca_dim)

    def forward(self, embedding, eps):
        h = self.fc(embedding)
        if self.activation == "leaky_relu":
            h = F.leaky_relu(h, LEAKY_SLOPE)
        else:
            h = F.relu(h)
        h = h.float()
        mu, log_sigma = h[:, : self.ca_dim], h[:, self.ca_dim :]
        return mu + torch.exp(log_sigma) * eps, mu, log_sigma


class ConditionalLogit(nn.Module):
    """D's head: text fc -> Nd + LeakyReLU, tiled Md x Md, joined to the image code, 1x1 conv
    + BN + LeakyReLU, Md x Md conv -> one float32 logit [B, 1]."""

    def __init__(self, embedding_dim: int, text_dim: int, md: int, channels: int):
        super().__init__()
        self.md = md
        self.text_fc = nn.Linear(embedding_dim, text_dim)
        self.joint = nn.Sequential(
            conv(channels + text_dim, channels, 1, bias=False),
            batch_norm(channels),
            nn.LeakyReLU(LEAKY_SLOPE),
        )
        self.logit = nn.Conv2d(channels, 1, md, bias=True)  # "valid": Md x Md -> 1 x 1

    def forward(self, code, embedding):
        text = F.leaky_relu(self.text_fc(embedding), LEAKY_SLOPE)
        x = torch.cat([code, tile(text, self.md).to(code.dtype)], 1)
        x = self.joint(x.contiguous(memory_format=_format(code)))
        with torch.autocast(x.device.type, enabled=False):  # Keras' logit layer is float32
            return self.logit(x.float()).flatten(1)


class Stage1Generator(nn.Module):
    """(embedding [B,E], noise [B,Nz], eps [B,Ng]) -> (image [B,3,s,s] tanh, mu, log_sigma)."""

    def __init__(self, m, image_size: int, memory_format=torch.contiguous_format):
        super().__init__()
        self.memory_format = memory_format
        self.ca = ConditioningAugmentation(m.embedding_dim, m.ca_dim, m.ca_activation)
        self.channels = channels = 8 * m.gf_dim
        # BatchNorm over the flat fc output: per-unit statistics, as both official codes
        self.fc = nn.Linear(m.ca_dim + m.z_dim, SEED_SIZE * SEED_SIZE * channels, bias=False)
        self.fc_bn = nn.BatchNorm1d(SEED_SIZE * SEED_SIZE * channels, BN_EPSILON, BN_MOMENTUM)
        bottlenecks = m.stage1_residual_bottlenecks
        self.seed = bottleneck_block(channels) if bottlenecks else nn.ReLU()
        ups = []
        for i in range(1, _steps(SEED_SIZE, image_size)):
            out = max(1, channels // 2)
            with_bottleneck = bottlenecks and i == 1
            ups.append(up_block(channels, out, activate=not with_bottleneck))
            if with_bottleneck:
                ups.append(bottleneck_block(out))
            channels = out
        self.ups = nn.Sequential(*ups)
        self.to_rgb = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), conv(channels, 3, 3, bias=True)
        )

    def forward(self, embedding, noise, eps):
        c, mu, log_sigma = self.ca(embedding, eps)
        x = self.fc_bn(self.fc(torch.cat([c, noise], 1)))
        x = x.view(-1, self.channels, SEED_SIZE, SEED_SIZE)
        x = self.ups(self.seed(x.contiguous(memory_format=self.memory_format)))
        return torch.tanh(self.to_rgb(x).float()), mu, log_sigma


class Stage1Discriminator(nn.Module):
    """(image [B,3,s,s], embedding [B,E]) -> logit [B,1]."""

    def __init__(self, m, image_size: int):
        super().__init__()
        downs, cin = [], 3
        for i in range(_steps(m.d_spatial, image_size)):
            downs.append(down_block(cin, m.df_dim * 2**i, normalize=i > 0))
            cin = m.df_dim * 2**i
        self.downs = nn.Sequential(*downs)
        self.head = ConditionalLogit(m.embedding_dim, m.text_dim_d, m.d_spatial, cin)

    def forward(self, image, embedding):
        return self.head(self.downs(image), embedding)


class Stage2Generator(nn.Module):
    """(Stage-I image [B,3,s,s], embedding [B,E], eps [B,Ng]) ->
    (image [B,3,4s,4s] tanh, mu, log_sigma)."""

    def __init__(self, m, low_res: int, memory_format=torch.contiguous_format):
        super().__init__()
        if m.stage2_output != "image":
            raise ValueError(f"stage2_output={m.stage2_output!r} is not mirrored in PyTorch")
        self.memory_format = memory_format
        gf = m.stage2_gf_dim
        self.joint_size = low_res // ENCODER_DOWNSAMPLING
        self.ca = ConditioningAugmentation(m.embedding_dim, m.ca_dim, m.ca_activation)
        self.encoder = nn.Sequential(
            conv(3, gf, 3, bias=True),
            nn.ReLU(),
            conv(gf, 2 * gf, 4, 2, bias=False),
            batch_norm(2 * gf),
            nn.ReLU(),
            conv(2 * gf, 4 * gf, 4, 2, bias=False),
            batch_norm(4 * gf),
            nn.ReLU(),
        )
        self.joint = nn.Sequential(
            conv(4 * gf + m.ca_dim, 4 * gf, 3, bias=False), batch_norm(4 * gf), nn.ReLU()
        )
        self.residuals = nn.Sequential(
            *(residual_block(4 * gf) for _ in range(m.stage2_residual_blocks))
        )
        ups, channels = [], 4 * gf
        for _ in range(_steps(self.joint_size, 4 * low_res)):
            ups.append(up_block(channels, max(1, channels // 2)))
            channels = max(1, channels // 2)
        self.ups = nn.Sequential(*ups)
        self.to_rgb = conv(channels, 3, 3, bias=True)

    def forward(self, stage1_image, embedding, eps):
        c, mu, log_sigma = self.ca(embedding, eps)
        x = self.encoder(stage1_image)
        x = torch.cat([x, tile(c, self.joint_size).to(x.dtype)], 1)
        x = self.joint(x.contiguous(memory_format=self.memory_format))
        x = self.ups(self.residuals(x))
        return torch.tanh(self.to_rgb(x).float()), mu, log_sigma


class Stage2Discriminator(nn.Module):
    """(image [B,3,S,S], embedding [B,E]) -> logit [B,1]: down-blocks df ... 32 df, two 1x1
    convs halving the channels, the text-conditioned head."""

    def __init__(self, m, high_res: int):
        super().__init__()
        if m.stage2_unconditional_logit:
            raise ValueError("stage2_unconditional_logit is not mirrored in PyTorch")
        layers, cin = [], 3
        for i in range(_steps(m.d_spatial, high_res)):
            layers.append(down_block(cin, m.stage2_df_dim * 2**i, normalize=i > 0))
            cin = m.stage2_df_dim * 2**i
        for _ in (1, 2):
            cout = max(1, cin // 2)
            layers += [conv(cin, cout, 1, bias=False), batch_norm(cout)]
            layers.append(nn.LeakyReLU(LEAKY_SLOPE))
            cin = cout
        self.downs = nn.Sequential(*layers)
        self.head = ConditionalLogit(m.embedding_dim, m.text_dim_d, m.d_spatial, cin)

    def forward(self, image, embedding):
        return self.head(self.downs(image), embedding)


def _format(x) -> torch.memory_format:
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def initialize(module: nn.Module) -> nn.Module:
    """DCGAN initialisation, as stackgan/models/blocks.py: N(0, 0.02) weights, BatchNorm gamma
    N(1, 0.02), zero biases (Keras' default)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(layer.weight, 0.0, 0.02)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.modules.batchnorm._BatchNorm):
            nn.init.normal_(layer.weight, 1.0, 0.02)
            nn.init.zeros_(layer.bias)
    return module


def build(m, stage: int, low_res: int, high_res: int, memory_format=torch.contiguous_format):
    """-> (generator, discriminator, frozen Stage-I generator or None), initialised, with
    4-d weights in `memory_format`."""
    if stage == 1:
        nets = (Stage1Generator(m, low_res, memory_format), Stage1Discriminator(m, low_res))
        nets += (None,)
    else:
        nets = (
            Stage2Generator(m, low_res, memory_format),
            Stage2Discriminator(m, high_res),
            Stage1Generator(m, low_res, memory_format),
        )
    return tuple(
        None if net is None else initialize(net).to(memory_format=memory_format) for net in nets
    )


def sigmoid_cross_entropy(logits, label: float):
    """[B,1] -> [B] float32 cross-entropy against a constant label."""
    logits = logits.float().flatten()
    return F.binary_cross_entropy_with_logits(
        logits, torch.full_like(logits, label), reduction="none"
    )


def kl_divergence(mu, log_sigma):
    """[B]: KL(N(mu, sigma^2) || N(0, I)) averaged over the Ng dimensions (losses.py)."""
    return (-log_sigma + 0.5 * (-1.0 + torch.exp(2.0 * log_sigma) + mu.square())).mean(-1)


class TrainStep:
    """One iteration as ConditionalGAN.train_step: generate once; D update on real/right,
    wrong and fake (without gradient to G) pairs; G update through the freshly updated D with
    the KL term. Adam(lr, beta_1) per network, one fused kernel per step as FusedAdam.
    `autocast`: None (float32) or a dtype for torch.autocast (bf16 autocast: weights and
    optimizer stay float32, as Keras' mixed_bfloat16; float16 adds dynamic loss scaling, as
    Keras' mixed_float16). Runs on the device of the networks' weights."""

    def __init__(
        self,
        generator,
        discriminator,
        m,
        *,
        kl_weight: float,
        lr: float,
        beta_1: float,
        stage1=None,
        autocast: torch.dtype | None = None,
    ):
        self.generator, self.discriminator, self.stage1 = generator, discriminator, stage1
        self.z_dim, self.ca_dim, self.kl_weight = m.z_dim, m.ca_dim, kl_weight
        self.autocast = autocast
        generator.train()
        discriminator.train()
        if stage1 is not None:
            # Frozen, but normalising with the batch's statistics (frozen_stage1_batchnorm
            # "batch", the official codes) without moving its averages: momentum 0.
            stage1.train().requires_grad_(False)
            for layer in stage1.modules():
                if isinstance(layer, nn.modules.batchnorm._BatchNorm):
                    layer.momentum = 0.0

        def adam(net):
            # Keras' Adam epsilon is 1e-7 (PyTorch's default 1e-8)
            return torch.optim.Adam(
                net.parameters(), lr=lr, betas=(beta_1, 0.999), eps=1e-7, fused=True
            )

        self.d_optimizer, self.g_optimizer = adam(discriminator), adam(generator)
        self.device = next(generator.parameters()).device
        # float16's range needs loss scaling (a no-op scaler otherwise); one per optimizer, as
        # each network's update is its own LossScaleOptimizer in Keras
        scaled = autocast == torch.float16
        self.d_scaler = torch.amp.GradScaler(self.device.type, enabled=scaled)
        self.g_scaler = torch.amp.GradScaler(self.device.type, enabled=scaled)

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.autocast or torch.bfloat16,
                              enabled=self.autocast is not None)  # fmt: skip

    def generate(self, embedding):
        batch, device = embedding.shape[0], embedding.device
        noise = torch.randn(batch, self.z_dim, device=device)
        eps = torch.randn(batch, self.ca_dim, device=device)
        if self.stage1 is None:
            return self.generator(embedding, noise, eps)
        with torch.no_grad():  # Stage-II sees Stage-I's image without gradient
            low = self.stage1(embedding, noise, eps)[0]
        return self.generator(low, embedding, torch.randn(batch, self.ca_dim, device=device))

    @staticmethod
    def _update(loss, optimizer, scaler) -> None:
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    def __call__(self, image, wrong_image, embedding) -> tuple[float, float]:
        """-> (d_loss, g_loss) of this iteration, once it is done."""
        d_loss, g_loss = self.step(image, wrong_image, embedding)
        return d_loss.item(), g_loss.item()

    def step(self, image, wrong_image, embedding):
        """-> (d_loss, g_loss) tensors of this iteration, without waiting for a GPU to finish
        it (a trainer reads its losses every few steps, not after each)."""
        d = self.discriminator
        with self._autocast():
            fake, mu, log_sigma = self.generate(embedding)

        # 1. Discriminator update: real/right -> 1, wrong (other class) and fake -> 0.
        with self._autocast():
            real = d(image, embedding)
            wrong = d(wrong_image, embedding)
            fake_d = d(fake.detach(), embedding)
        d_loss = (
            sigmoid_cross_entropy(real, 1.0)
            + 0.5 * (sigmoid_cross_entropy(wrong, 0.0) + sigmoid_cross_entropy(fake_d, 0.0))
        ).mean()
        self._update(d_loss, self.d_optimizer, self.d_scaler)

        # 2. Generator update through the updated D, plus the KL term. D's weights take no
        # gradient here (TF's tape watches G's variables only).
        d.requires_grad_(False)
        try:
            with self._autocast():
                fake_g = d(fake, embedding)
            g_loss = (
                sigmoid_cross_entropy(fake_g, 1.0) + self.kl_weight * kl_divergence(mu, log_sigma)
            ).mean()
            self._update(g_loss, self.g_optimizer, self.g_scaler)
        finally:
            d.requires_grad_(True)
        return d_loss.detach(), g_loss.detach()
