"""Which floating-point precision the networks compute in (`TrainConfig.precision`), and why.

- `float32`: everything in float32.
- `bfloat16`: Keras' "mixed_bfloat16": layers compute in bfloat16, variables and the optimizer
  stay float32. bfloat16 has float32's exponent range, so no loss scaling is needed.
- `float16`: Keras' "mixed_float16" with a dynamic LossScaleOptimizer, so small float16
  gradients do not underflow. GPUs only: a CPU has no float16 arithmetic units and emulates it
  (measured: over 12 CPU-minutes for 4 paper Stage-I steps), so float16 on a CPU is refused.
- `auto`: `auto_choice` on this machine's hardware: bfloat16 where it has native bf16 units
  (CPUs with AMX or AVX512_BF16, NVIDIA GPUs of compute capability >= 8.0), float16 on older
  NVIDIA GPUs, float32 otherwise (e.g. an AVX2-only CPU, where bf16 is emulated and slow).

Either way images, logits, mu and log_sigma stay float32 (the model builders pin those layers)
and so do the losses. The choice is made where the hardware is known, at training start
(`resolve`), and recorded with its reason (training_summary.json, TensorBoard's `precision`
text) because `auto` gives different answers on different machines.
"""

from __future__ import annotations

import dataclasses
import functools

import keras

from stackgan.errors import UserError

POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
# the /proc/cpuinfo flags of native bfloat16 arithmetic, with how a reason names them
BF16_CPU_FLAGS = {"amx_bf16": "AMX bf16", "avx512_bf16": "AVX512_BF16"}
BF16_MIN_COMPUTE_CAPABILITY = (8, 0)  # NVIDIA Ampere


class PrecisionError(UserError, ValueError):
    """A precision this machine cannot run (float16 on a CPU)."""


@dataclasses.dataclass(frozen=True)
class Hardware:
    """What `auto` looks at: the CPU's feature flags and the compute capability of each GPU."""

    cpu_flags: frozenset[str]
    gpu_capabilities: tuple[tuple[int, int], ...] = ()

    @property
    def native_bf16(self) -> str:
        """How the native bf16 unit is named in a reason ("" when there is none)."""
        if self.gpu_capabilities:
            major, minor = min(self.gpu_capabilities)
            if (major, minor) >= BF16_MIN_COMPUTE_CAPABILITY:
                return f"NVIDIA GPU of compute capability {major}.{minor}"
            return ""
        for flag, name in BF16_CPU_FLAGS.items():
            if flag in self.cpu_flags:
                return name
        return ""


@dataclasses.dataclass(frozen=True)
class Precision:
    """The precision a run computes in (never "auto") and why."""

    name: str  # float32 | bfloat16 | float16
    reason: str

    @property
    def policy(self) -> str:
        """The Keras dtype policy to pass to `stackgan.models.build_*(dtype_policy=...)`."""
        return POLICIES[self.name]

    def describe(self) -> str:
        return f"{self.name} ({self.reason})"


def auto_choice(hardware: Hardware) -> Precision:
    """What `precision=auto` computes in on `hardware` (the one place that rule lives)."""
    native = hardware.native_bf16
    if native:
        return Precision("bfloat16", f"auto: {native} found")
    if hardware.gpu_capabilities:
        major, minor = min(hardware.gpu_capabilities)
        return Precision(
            "float16",
            f"auto: NVIDIA GPU of compute capability {major}.{minor} has no bf16 units"
            " (< 8.0): float16 with loss scaling",
        )
    return Precision("float32", "auto: no native bf16 on this CPU (no AMX / AVX512_BF16 flag)")


def resolve(requested: str, hardware: Hardware | None = None) -> Precision:
    """The precision to train in for `TrainConfig.precision = requested` on `hardware`
    (default: this machine's); raises PrecisionError for float16 without a GPU."""
    if requested not in (*POLICIES, "auto"):
        raise ValueError(f"train.precision must be one of {(*POLICIES, 'auto')}, got {requested!r}")
    hardware = hardware if hardware is not None else detect_hardware()
    if requested == "auto":
        return auto_choice(hardware)
    if requested == "float16" and not hardware.gpu_capabilities:
        raise PrecisionError(
            "train.precision=float16 needs a GPU and this machine has none: a CPU emulates"
            " float16 (minutes per step); use --set train.precision=auto (bfloat16 where the"
            " CPU has it) or float32"
        )
    reason = f"train.precision={requested}"
    if requested == "bfloat16" and not hardware.native_bf16:
        reason += " (no native bf16 here: emulated, slower than float32)"
    return Precision(requested, reason)


def read_cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str]:
    """The `flags` of the first CPU listed in `path` (empty where there is no such file)."""
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "flags":
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


@functools.lru_cache(maxsize=1)
def detect_hardware() -> Hardware:
    """This machine: /proc/cpuinfo's flags and the compute capability of each visible GPU."""
    import tensorflow as tf

    capabilities = []
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        if capability:
            capabilities.append(tuple(capability))
    return Hardware(read_cpu_flags(), tuple(capabilities))


def dtype_policy(requested: str) -> str:
    """The Keras dtype policy of `TrainConfig.precision = requested` on this machine."""
    return resolve(requested).policy


def needs_loss_scaling(model: keras.Model) -> bool:
    """Whether any layer of `model` computes in float16 (whose gradients underflow)."""
    return any(layer.compute_dtype == "float16" for layer in _layers(model))


def for_precision(optimizer: keras.optimizers.Optimizer, model: keras.Model):
    """`optimizer`, wrapped in a dynamic LossScaleOptimizer when `model` computes in float16."""
    if needs_loss_scaling(model) and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return keras.optimizers.LossScaleOptimizer(optimizer, name=f"{optimizer.name}_scaled")
    return optimizer


def _layers(layer):
    for sub in getattr(layer, "layers", []):
        yield sub
        yield from _layers(sub)
