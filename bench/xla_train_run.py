"""A StackGAN training run on a GPU machine without TensorFlow, with our TensorFlow trainer's
own iteration: Stage-I, then Stage-II on the frozen Stage-I, each step the XLA program that
TensorFlow compiles `ConditionalGAN.train_step` into (bench_xla_program.py says how and why),
run by JAX's XLA on a work dir's training Examples. Its images of the Evaluator's own captions
go back to be scored by the Evaluator's code, as torch_train_run.py's are.

    # 1. a work dir's training Examples + the captions the Evaluator scores (TensorFlow)
    .venv/bin/python bench/torch_run_data.py export --work-dir stackgan-work --out run/data.npz
    # 2. the run's XLA programs (TensorFlow; about 2 minutes for the paper profile)
    .venv/bin/python bench/xla_train_run.py export --data run/data.npz --out run/programs
    # 3. on the GPU machine (JAX and PyTorch, no TensorFlow):
    python bench/xla_train_run.py train --programs run/programs --data run/data.npz \\
        --out run/generated --stage1-seconds 100 --stage2-seconds 300
    # 4. its images, scored by the Evaluator's code against the work dir's classifier
    .venv/bin/python bench/torch_run_data.py score --work-dir stackgan-work --generated run/generated

What runs is ours, not a mirror: `export` builds the profile's networks under the precision's
Keras policy, exactly as the trainers build them, and writes six XLA modules that share their
variables by name:
- `stage1_train`, `stage2_train`: StageIGAN's and StageIIGAN's train_step (D then G Adam
  updates, Conditioning Augmentation's noise and KL, the matching-aware loss, the learning rate
  halved every `train.lr_decay_epochs` epochs of CUB's size (8,855 images: on a split of a few
  hundred images an epoch of its own would halve it every few hundred iterations), Stage-I
  frozen with `model.frozen_stage1_batchnorm`);
- `stage1_statistics`, `stage2_statistics`: one training-mode pass of the trained generator with
  every BatchNorm momentum 0 (batch_norm.batch_statistics_written), so `train` re-estimates the
  statistics as the mean over `train.precise_bn_batches` batches, as precise_bn.py does;
- `stage1_generate` (Stage-I's progress images) and `generate` (both stages through
  models.generate_chain in inference mode, pixels rounded by tfrecords.pixels.to_uint8), the
  images as the exported generator serves them.

`train` starts each variable from the manifest: small ones (counters, the noise seeds' states,
learning-rate steps) by value, the weights drawn from a normal of their initial mean and spread
(a kernel's initialiser's variance, not its exact values, which would not fit the 64 MiB a GPU
call carries). Each batch is drawn on the GPU by torch_train_run.TrainingSplit (the input
pipeline's crop, flip, wrong image and mean of caption embeddings) and handed to XLA without a
copy (DLPack). Not done: the averaged generator (`train.generator_ema`), checkpoints, sample
sheets during training (Stage-I's images of 8 fixed captions at 8 points instead).

Out: generated_{train,test}.npz as torch_train_run.py writes them, and the log on stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# this folder is on sys.path when a bench runs as a script; no TensorFlow at these imports
from bench_train_step import CUB_TRAIN_IMAGES, cpu_model
from bench_xla_program import _compile, _jax, _step, filled, write_program
from torch_run_data import EXPORTED_KEYS, load_npz, save_generated
from torch_train_run import (
    GENERATE_BATCH,
    PROGRESS_CAPTIONS,
    add_run_arguments,
    report_stage,
    timed_iterations,
)

RUN_MANIFEST = "run.json"
STATISTICS = ("moving_mean", "moving_variance")


def run_config(profile: str, overrides: list[str], data):
    """The profile with the exported data's embedding size and stored image sizes."""
    from stackgan import config as config_lib
    from stackgan.errors import UserError

    embedding_dim = data["embeddings"].shape[-1]
    low_stored, high_stored = (int(x) for x in data["stored"])
    try:
        return config_lib.get_profile(profile).with_overrides(
            [
                f"model.embedding_dim={embedding_dim}",
                f"data.embedding_dim={embedding_dim}",
                f"text.embedding_dim={embedding_dim}",
                f"data.low_res_stored={low_stored}",
                f"data.high_res_stored={high_stored}",
                *overrides,
            ]
        )
    except UserError as e:
        raise SystemExit(f"xla_train_run: {e}") from None


def stage_batches(cfg) -> dict[int, int]:
    t = cfg.train
    return {1: t.batch_size, 2: t.stage2_batch_size or t.batch_size}


# ----------------------------------------------------------------------------- TensorFlow side


class VariableNames:
    """{id(variable handle): a name unique in the run}: the key by which the run's programs
    share a variable (Stage-II's step reads the Stage-I generator that Stage-I's step trained).
    Keras paths repeat across models (both GANs' `d_adam/iterations`), so a repeat gets `#n`."""

    def __init__(self):
        self.names: dict[int, str] = {}
        self._taken: set[str] = set()

    def add(self, variables) -> None:
        for v in variables:
            if id(v.handle) in self.names:
                continue
            name, n = v.path, 1
            while name in self._taken:
                n += 1
                name = f"{v.path}#{n}"
            self.names[id(v.handle)] = name
            self._taken.add(name)


def export(args) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from stackgan import models, training
    from stackgan.models.batch_norm import batch_statistics_written
    from stackgan.models.chain import generate_chain
    from stackgan.training import precision as precision_lib
    from tfrecords.pixels import to_uint8

    data = load_npz(args.data, EXPORTED_KEYS, "`torch_run_data.py export`")
    cfg = run_config(args.profile, args.set, data)
    os.makedirs(args.out, exist_ok=True)
    policy = precision_lib.POLICIES[args.precision]
    m, low, high = cfg.model, cfg.data.low_res, cfg.data.high_res
    batches = stage_batches(cfg)
    rng = np.random.default_rng(0)
    names = VariableNames()
    programs = {}

    def normal(n: int, *shape: int):
        return tf.constant(rng.standard_normal((n, *shape)), tf.float32)

    def batch_of(size: int, n: int) -> dict:
        return {"image": normal(n, size, size, 3), "wrong_image": normal(n, size, size, 3),
                "embedding": normal(n, m.embedding_dim)}  # fmt: skip

    def conditions(n: int, stages: int = 1) -> dict:
        extra = {"ca_noise_2": normal(n, m.ca_dim)} if stages == 2 else {}
        return {"embedding": normal(n, m.embedding_dim), "noise": normal(n, m.z_dim),
                "ca_noise": normal(n, m.ca_dim), **extra}  # fmt: skip

    def averages(gan) -> list[list[str]]:
        """[generator weight's name, its average's name] (`train.generator_ema`), as
        generator_average.averaged_weights swaps them in."""
        optimizer = getattr(gan.g_optimizer, "inner_optimizer", gan.g_optimizer)
        if not optimizer.use_ema:
            return []
        average = optimizer._model_variables_moving_average
        return [
            [names.names[id(v.handle)],
             names.names[id(average[optimizer._get_variable_index(v)].handle)]]
            for v in gan.generator.trainable_variables
        ]  # fmt: skip

    def write(role: str, function, inputs: dict, metrics=(), gan=None) -> None:
        start = time.perf_counter()
        fields, _ = write_program(tf.function(function, jit_compile=True), inputs, names.names,
                                  args.out, role)  # fmt: skip
        untracked = [a["shape"] for a in fields["args"] if a["name"] == "untracked"]
        if untracked:
            raise SystemExit(f"xla_train_run: {role} reads variables no model owns: {untracked}")
        # the Keras metrics' running sums that the step's logs average, reset as fit() does
        fields["metrics"] = [names.names[id(v.handle)] for v in metrics]
        fields["averages"] = averages(gan) if gan is not None else []
        programs[role] = fields
        size = os.path.getsize(os.path.join(args.out, fields["hlo"])) / 2**20
        print(f"{role}: {len(fields['args'])} arguments, module {size:.1f} MiB "
              f"({time.perf_counter() - start:.0f} s)", flush=True)  # fmt: skip

    def compiled(gan, stage: int):
        steps_per_epoch = max(1, args.epoch_images // batches[stage])
        gan.compile(*training.make_optimizers(cfg.train, steps_per_epoch, stage=stage))
        names.add([*gan.variables, *gan.metrics_variables, *gan.d_optimizer.variables,
                   *gan.g_optimizer.variables])  # fmt: skip
        return gan

    # Stage-I, traced while its generator trains (StageIIGAN freezes it below)
    g1 = models.build_stage1_generator(m, low, dtype_policy=policy)
    d1 = models.build_stage1_discriminator(m, low, dtype_policy=policy)
    gan1 = compiled(training.StageIGAN(g1, d1, cfg), 1)
    write("stage1_train", gan1.train_step, batch_of(low, batches[1]), gan1.metrics_variables,
          gan1)  # fmt: skip

    def stage1_statistics(c):
        g1([c["embedding"], c["noise"], c["ca_noise"]], training=True)

    with batch_statistics_written(g1):
        write("stage1_statistics", stage1_statistics, conditions(batches[1]))

    def stage1_images(c):
        (image, _, _), _ = generate_chain(g1, None, c["embedding"], c["noise"], c["ca_noise"])
        return {"stage1": to_uint8(image)}

    write("stage1_generate", stage1_images, conditions(PROGRESS_CAPTIONS))

    # Stage-II on the frozen Stage-I
    g2 = models.build_stage2_generator(m, low, dtype_policy=policy)
    d2 = models.build_stage2_discriminator(m, high, dtype_policy=policy)
    gan2 = compiled(training.StageIIGAN(g1, g2, d2, cfg), 2)
    write("stage2_train", gan2.train_step, batch_of(high, batches[2]), gan2.metrics_variables,
          gan2)  # fmt: skip

    def chain(c, training: bool):
        return generate_chain(g1, g2, c["embedding"], c["noise"], c["ca_noise"],
                              c["ca_noise_2"], training=training)  # fmt: skip

    def stage2_statistics(c):
        chain(c, True)

    with batch_statistics_written(g2):
        write("stage2_statistics", stage2_statistics, conditions(batches[2], 2))

    def both_images(c):
        (low_image, _, _), (high_image, _, _) = chain(c, False)
        return {"stage1": to_uint8(low_image), "stage2": to_uint8(high_image)}

    write("generate", both_images, conditions(GENERATE_BATCH, 2))
    manifest = {
        "profile": args.profile, "overrides": args.set, "precision": args.precision,
        "batches": batches, "programs": programs, "tensorflow": tf.__version__,
        "exported_on": cpu_model(),
    }  # fmt: skip
    with open(os.path.join(args.out, RUN_MANIFEST), "w") as f:
        json.dump(manifest, f)


# ------------------------------------------------------------------------------------ JAX side


class Variables:
    """The run's variables on the device, by name; each starts as the first program that reads
    it says (by value, or a normal of its initial mean and spread)."""

    def __init__(self, device, seed: int):
        self.device, self.values = device, {}
        self._rng = np.random.default_rng(seed)

    def declare(self, arg: dict) -> None:
        import jax

        if arg["name"] not in self.values:
            self.values[arg["name"]] = jax.device_put(filled(arg, self._rng), self.device)


class Program:
    """One exported module, compiled; a call takes its inputs by name, reads its variables from
    `variables`, writes back the ones it updates (unless `keep=False`) and returns its named
    outputs and the updated values."""

    dlpack = True  # how torch's batches reach XLA; off after a failure

    def __init__(self, folder: str, role: str, fields: dict, device, variables: Variables):
        start = time.perf_counter()
        self.role, self.device, self.variables = role, device, variables
        self.executable, self.aliases = _compile(folder, fields, device)
        self.args = fields["args"]
        self.output_names = fields["log_names"]
        self.metrics = fields.get("metrics", [])
        self.averages = fields.get("averages", [])
        for arg in self.args:
            if arg["kind"] == "variable":
                variables.declare(arg)
        memory = self.executable.get_compiled_memory_stats()
        self.memory_gib = (memory.argument_size_in_bytes + memory.output_size_in_bytes
                           + memory.temp_size_in_bytes - memory.alias_size_in_bytes) / 2**30  # fmt: skip
        print(f"{role}: compiled in {time.perf_counter() - start:.0f} s, "
              f"{self.memory_gib:.1f} GiB planned", flush=True)  # fmt: skip

    def __call__(self, inputs: dict, keep: bool = True, weights: dict | None = None):
        """-> (named outputs, updated variables); `weights` stand in for the variables they
        name, for this call only."""
        weights = weights or {}
        arguments = [
            self._on_device(inputs[a["name"]]) if a["kind"] == "batch"
            else weights.get(a["name"], self.variables.values.get(a["name"]))
            for a in self.args
        ]  # fmt: skip
        if not keep:  # the module donates what it updates: hand it copies
            import jax.numpy as jnp

            for p in self.aliases.values():
                arguments[p] = jnp.array(arguments[p], copy=True)
        outputs = _step(self.executable, arguments, self.aliases)
        updated = {self.args[p]["name"]: arguments[p] for p in self.aliases.values()}
        if keep:
            self.variables.values.update(updated)
        return {n: outputs[i] for i, n in enumerate(self.output_names)}, updated

    def averaged_weights(self) -> dict:
        """{generator weight's name: its average} (`train.generator_ema`; empty without)."""
        return {w: self.variables.values[a] for w, a in self.averages}

    def keep_averaged_weights(self) -> None:
        """The generator takes its averaged weights for good, as the trainer's export does."""
        import jax.numpy as jnp

        self.variables.values.update(
            {w: jnp.array(v, copy=True) for w, v in self.averaged_weights().items()}
        )

    def reset_metrics(self) -> None:
        """Zeroes the running sums the logs average, as Keras does at each epoch's start."""
        import jax.numpy as jnp

        for name in self.metrics:
            self.variables.values[name] = jnp.zeros_like(self.variables.values[name])

    def _on_device(self, value):
        import jax

        if isinstance(value, np.ndarray):
            return jax.device_put(value, self.device)
        value = value.contiguous()
        if self.dlpack:
            try:  # a torch tensor on the same GPU: shared, not copied (streams synchronised)
                return jax.dlpack.from_dlpack(value)
            except Exception as e:  # a jax/torch pairing without it: through the host
                print(f"xla_train_run: DLPack failed ({type(e).__name__}: {e}); batches go "
                      "through the host", flush=True)  # fmt: skip
                Program.dlpack = False
        return jax.device_put(value.cpu().numpy(), self.device)


def train_stage(program, split, stage: int, batch_size: int, seconds: float, max_steps: int,
                log_every: int, snapshot=None) -> int:  # fmt: skip
    """Runs `program` on training batches until `seconds` pass (or `max_steps`); -> iterations.
    `snapshot(i)` is called at PROGRESS_POINTS evenly spaced moments."""
    import jax

    start = time.perf_counter()
    iterations, logs = 0, {}
    for iteration in timed_iterations(seconds, max_steps, snapshot):
        image, wrong, embedding = split.batch(stage, batch_size)
        # NCHW in channels-last memory -> the NHWC the trainer's batches are, without a copy
        batch = {"image": image.permute(0, 2, 3, 1), "wrong_image": wrong.permute(0, 2, 3, 1),
                 "embedding": embedding}  # fmt: skip
        logs, _ = program(batch)
        iterations = iteration + 1
        if iterations % log_every == 0:
            values = {k: float(v) for k, v in logs.items()}  # waits for the GPU
            rate = iterations / (time.perf_counter() - start)
            shown = " ".join(f"{k} {v:.3f}" for k, v in values.items())
            print(f"stage {stage} iteration {iterations}: {shown} ({rate:.1f} it/s, "
                  f"{rate * batch_size:.0f} img/s)", flush=True)  # fmt: skip
            if not all(math.isfinite(v) for v in values.values()):
                raise SystemExit(f"xla_train_run: stage {stage} logs not finite at {iterations}")
            program.reset_metrics()  # each line: the mean over its last `log_every` iterations
    jax.block_until_ready(list(logs.values()))
    report_stage(stage, iterations, batch_size, time.perf_counter() - start, split.count)
    return iterations


def precise_statistics(program, split, batch_size: int, batches: int, rng, cfg) -> int:
    """Sets the generator's BatchNorm statistics to their mean over `batches` training-mode
    batches under its final weights (precise_bn.py); -> how many statistics were set."""
    m = cfg.model
    sums: dict[str, np.ndarray] = {}
    for _ in range(batches):
        inputs = {"embedding": split.random_embeddings(batch_size)}
        for key, dim in (("noise", m.z_dim), ("ca_noise", m.ca_dim), ("ca_noise_2", m.ca_dim)):
            inputs[key] = rng.standard_normal((batch_size, dim)).astype(np.float32)
        _, updated = program(inputs, keep=False)
        for name, value in updated.items():
            if not name.split("#")[0].endswith(STATISTICS):
                raise SystemExit(f"xla_train_run: {program.role} updates {name}, not a statistic")
            sums[name] = sums.get(name, 0.0) + np.asarray(value, np.float64)
    import jax

    program.variables.values.update(
        {
            n: jax.device_put((s / batches).astype(np.float32), program.device)
            for n, s in sums.items()
        }
    )
    return len(sums)


def generate(program, cfg, embeddings: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """-> (Stage-I uint8 [N,64,64,3], Stage-II uint8 [N,256,256,3]) of `embeddings`, the noise
    drawn from N(0, model.truncation^2) as the exported generator draws it."""
    rng = np.random.default_rng(seed)
    m, lows, highs = cfg.model, [], []
    for start in range(0, len(embeddings), GENERATE_BATCH):
        e = embeddings[start : start + GENERATE_BATCH].astype(np.float32)
        n = len(e)
        padded = np.concatenate([e, np.repeat(e[-1:], GENERATE_BATCH - n, 0)])
        inputs = {"embedding": padded}
        for key, dim in (("noise", m.z_dim), ("ca_noise", m.ca_dim), ("ca_noise_2", m.ca_dim)):
            noise = m.truncation * rng.standard_normal((GENERATE_BATCH, dim))
            inputs[key] = noise.astype(np.float32)
        images, _ = program(inputs, keep=False)
        lows.append(np.asarray(images["stage1"])[:n])
        highs.append(np.asarray(images["stage2"])[:n])
    return np.concatenate(lows), np.concatenate(highs)


def train(args) -> None:
    from bench_torch_ab import require_torch
    from torch_train_run import TrainingSplit

    # the GPU is shared with PyTorch, which holds the training split and draws the batches
    os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.6")
    jax = _jax()
    torch = require_torch("xla_train_run")
    manifest_path = os.path.join(args.programs, RUN_MANIFEST)
    if not os.path.isfile(manifest_path):
        raise SystemExit(f"xla_train_run: {manifest_path}: missing (write it with `export`)")
    with open(manifest_path) as f:
        manifest = json.load(f)
    data = load_npz(args.data, EXPORTED_KEYS, "`torch_run_data.py export`")
    cfg = run_config(manifest["profile"], manifest["overrides"], data)
    batches = {int(k): v for k, v in manifest["batches"].items()}
    device = jax.devices()[0]
    on_gpu = device.platform in ("gpu", "cuda") and torch.cuda.is_available()
    torch_device = torch.device("cuda" if on_gpu else "cpu")  # where the batches are drawn
    torch.manual_seed(args.seed)
    print(f"device: {device.device_kind} ({device.platform}); JAX {jax.__version__}, torch "
          f"{torch.__version__}; host {cpu_model()}", flush=True)  # fmt: skip
    split = TrainingSplit(data, cfg, torch, torch_device)
    print(f"profile={manifest['profile']} overrides={manifest['overrides']} "
          f"precision={manifest['precision']}; {split.count} training images, embeddings "
          f"{data['embeddings'].shape[-1]}-d; batches {batches}", flush=True)  # fmt: skip
    variables = Variables(device, args.seed)
    rng = np.random.default_rng(args.seed)

    def program(role: str) -> Program:
        return Program(args.programs, role, manifest["programs"][role], device, variables)

    # Stage-I, with its images of 8 fixed captions at 8 points of the run
    stage1, stage1_images = program("stage1_train"), program("stage1_generate")
    evaluated = data["eval_train_embeddings"]
    fixed = evaluated[np.linspace(0, len(evaluated) - 1, PROGRESS_CAPTIONS).astype(int)]
    m = cfg.model
    fixed_inputs = {
        "embedding": fixed.astype(np.float32),
        "noise": (m.truncation * rng.standard_normal((len(fixed), m.z_dim))).astype(np.float32),
        "ca_noise": (m.truncation * rng.standard_normal((len(fixed), m.ca_dim))).astype(np.float32),
    }
    progress, progress_steps = [], []

    def snapshot(iteration: int) -> None:  # with the averaged weights, as the sample sheets
        images, _ = stage1_images(fixed_inputs, keep=False, weights=stage1.averaged_weights())
        progress.append(np.asarray(images["stage1"]))
        progress_steps.append(iteration)

    steps1 = train_stage(stage1, split, 1, batches[1], args.stage1_seconds, args.stage1_steps,
                         args.log_every, snapshot)  # fmt: skip
    stage1.keep_averaged_weights()
    set1 = precise_statistics(program("stage1_statistics"), split, batches[1],
                              cfg.train.precise_bn_batches, rng, cfg)  # fmt: skip
    snapshot(steps1)
    print(f"stage 1: {set1} BatchNorm statistics re-estimated", flush=True)

    # Stage-II on the frozen Stage-I
    stage2 = program("stage2_train")
    steps2 = train_stage(stage2, split, 2, batches[2], args.stage2_seconds, args.stage2_steps,
                         args.log_every)  # fmt: skip
    stage2.keep_averaged_weights()
    set2 = precise_statistics(program("stage2_statistics"), split, batches[2],
                              cfg.train.precise_bn_batches, rng, cfg)  # fmt: skip
    print(f"stage 2: {set2} BatchNorm statistics re-estimated", flush=True)

    both = program("generate")
    os.makedirs(args.out, exist_ok=True)
    for number, split_name in enumerate(("train", "test")):
        embeddings = data[f"eval_{split_name}_embeddings"]
        low, high = generate(both, cfg, embeddings, args.seed + number)
        extra = {}
        if split_name == "train":
            extra = {"progress": np.stack(progress), "progress_steps": np.asarray(progress_steps)}
        save_generated(args.out, split_name, embeddings, low, high, [steps1, steps2], **extra)


def main() -> int:
    from bench_xla_program import EXPORTED_PRECISIONS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export", help="write the run's XLA programs (TensorFlow)")
    e.add_argument("--data", required=True, help="the .npz of `torch_run_data.py export`")
    e.add_argument("--out", required=True, help="folder for the programs and run.json")
    e.add_argument("--profile", default="paper", help="config profile (default: paper)")
    e.add_argument("--set", action="append", default=[], help="config override")
    e.add_argument(
        "--epoch-images",
        type=int,
        default=CUB_TRAIN_IMAGES,
        help="images per epoch of the learning-rate schedule (default: CUB's 8,855)",
    )
    e.add_argument("--precision", default="bfloat16",
                   choices=[p for p in EXPORTED_PRECISIONS if p != "float32-ieee"])  # fmt: skip
    t = sub.add_parser("train", help="the run, on the first device (JAX and PyTorch)")
    t.add_argument("--programs", required=True, help="the folder `export` wrote")
    add_run_arguments(t, seconds=(100.0, 300.0), log_every=1000)
    args = p.parse_args()
    if args.command == "export":
        export(args)
    else:
        train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
