"""Our TensorFlow training iteration on a GPU machine without TensorFlow: the XLA program that
TensorFlow compiles the GAN's train_step into (`train.xla=true`), run there by JAX's XLA.

The GPU machine this project is lent now and then (an NVIDIA H200) carries PyTorch and JAX and
no TensorFlow, and a call to it carries 64 MiB (TensorFlow alone is 1.9 GB installed, before
the CUDA 12 libraries it loads). But with `jit_compile` TensorFlow lowers the whole iteration
(both networks' forward and backward passes, the losses, Conditioning Augmentation's noise,
Adam's updates, loss scaling in float16) to one XLA HLO module, and XLA is the compiler that
TensorFlow runs it with on a GPU. So `export` writes that module here, a few MB, and `run`
compiles and times it there with the XLA that JAX brings, importing no TensorFlow:

    .venv/bin/python bench/bench_xla_program.py export --out .xla                 # TensorFlow
    python bench/bench_xla_program.py run --programs .xla --out results.json      # JAX, a GPU
    # the program's losses and gradients against TensorFlow's own step's, on a CPU:
    .venv/bin/python bench/bench_xla_program.py export --out /tmp/x --profile paper --batch 16 \\
        --stage 1 --precision float32 --reference
    .venv-jax/bin/python bench/bench_xla_program.py check --programs /tmp/x  # requirements/bench-jax.txt

`export` builds the networks of `--profile` under each precision's Keras policy, compiles the
step as bench_train_step.py does with `--xla`, and writes per (precision, stage, batch) the
module (`HloModuleProto`, portable across XLA versions) and a manifest: each argument's shape,
dtype and how to fill it (the batch as the input pipeline gives it; a variable's exact value if
it is small, else its initial mean and spread, so the weights, BatchNorm scales, Adam moments
and the loss scale start as the trainer's do), the names of the step's logs, and the float
operations of the float32 step from TensorFlow's graph profiler (bench_train_step.py's count).
`float32` is exported twice: as TensorFlow runs float32 on an Ampere-or-later GPU by default
(TF32 matrix units for convolutions and matmuls), and with TF32 off (`float32-ieee`,
`tf.config.experimental.enable_tensor_float_32_execution(False)`, which the module carries as
HIGHEST precision). `--reference` also writes the arguments' exact values and TensorFlow's own
step's outputs on them (small settings: they are every weight).

`run` compiles each module for the first device, fills its arguments, runs `--warmup`
iterations and then one CUB-sized epoch (8,855 images, StackGAN's training split, in
iterations of the batch) between two synchronisations. Each iteration's updated variables are
fed to the next (the module's input/output aliases, as TensorFlow updates resource variables in
place). It prints seconds per epoch, images/s, achieved TFLOP/s and their share of the device's
matmul rate in that precision measured in the same run (8192^3; TF32 for float32, IEEE for
float32-ieee), and XLA's memory plan of the step. Results go to `--out` as JSON as they come,
so a run cut short keeps what it measured.

What it is not: TensorFlow's default GPU path (`train.xla=false`, one cuDNN kernel per op), nor
the input pipeline (the batch is fixed, already on the device: bench_input_pipeline.py times
the pipeline), and the XLA is JAX's, newer than TensorFlow 2.21's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time

# this folder is on sys.path when a bench runs as a script
from bench_train_step import (
    CUB_TRAIN_IMAGES,
    PRECISIONS,
    add_setting_arguments,
    cpu_model,
    settings,
)

EXACT_MAX_SIZE = 64  # variables this small are exported by value (counters, seeds, loss scale)
IEEE = "float32-ieee"
EXPORTED_PRECISIONS = (*PRECISIONS, IEEE)


def program_name(precision: str, stage: int, batch: int) -> str:
    return f"stage{stage}_b{batch}_{precision}"


# ----------------------------------------------------------------------------- TensorFlow side


def _variable_dtype(handle):
    """The dtype of the variable behind a captured resource handle."""
    import tensorflow as tf

    return tf.as_dtype(handle._handle_data.shape_and_type[0].dtype)


def _read(handle):
    import tensorflow as tf

    return tf.raw_ops.ReadVariableOp(resource=handle, dtype=_variable_dtype(handle)).numpy()


def _fill(value, kind: str) -> dict:
    """How `run` fills an argument like `value`: exactly, or by its initial distribution."""
    import numpy as np

    if kind == "batch" or value.size > EXACT_MAX_SIZE:
        values = value.astype(np.float64)
        return {"mean": float(values.mean()), "std": float(values.std())}
    return {"values": value.reshape(-1).tolist()}


def _aliases(hlo_text: str) -> list[tuple[int, int]]:
    """(output index, parameter number) of the variables the step updates: the module's
    input/output aliases, on the first line of its HLO text (the StableHLO that `run` compiles
    does not carry them)."""
    header = hlo_text.split("\n", 1)[0]
    return [(int(o), int(p)) for o, p in re.findall(r"\{(\d+)\}: \((\d+), \{\}", header)]


def write_program(function, inputs: dict, names: dict, out: str, name: str) -> tuple[dict, list]:
    """Writes the XLA module of `function` (a jit-compiled tf.function of one dict of tensors)
    on `inputs` to `out/<name>.hlo.pb`. -> (the manifest's fields of the module: its arguments,
    named by `names` {id(variable handle): name}, each with its fill; the names of its leading
    outputs; its aliases), and the arguments' values."""
    concrete = function.get_concrete_function(inputs)
    compiler_ir = function.experimental_get_compiler_ir(inputs)
    with open(os.path.join(out, f"{name}.hlo.pb"), "wb") as f:
        f.write(compiler_ir(stage="hlo_serialized"))
    # the module's parameters: the inputs (tf.nest's order: sorted keys), then the captures
    input_keys = sorted(inputs)
    values = [inputs[k].numpy() for k in input_keys]
    values += [_read(h) for h in concrete.captured_inputs]
    arg_names = input_keys + [names.get(id(h), "untracked") for h in concrete.captured_inputs]
    kinds = ["batch"] * len(input_keys) + ["variable"] * len(concrete.captured_inputs)
    args = [
        {"name": n, "kind": k, "shape": list(v.shape), "dtype": str(v.dtype), **_fill(v, k)}
        for n, k, v in zip(arg_names, kinds, values, strict=True)
    ]  # fmt: skip
    outputs = concrete.structured_outputs
    fields = {
        "name": name, "hlo": f"{name}.hlo.pb", "args": args,
        # the module returns these first (tf.nest's order), then the variables it updated
        "log_names": sorted(outputs) if isinstance(outputs, dict) else [],
        "aliases": _aliases(compiler_ir(stage="hlo")),
    }  # fmt: skip
    return fields, values


def export_program(cfg, precision: str, stage: int, batch_size: int, out: str, flops: float,
                   reference: bool) -> dict:  # fmt: skip
    """Writes one (precision, stage, batch)'s XLA module and manifest to `out`; returns it."""
    import bench_train_step as step_bench
    import numpy as np
    import tensorflow as tf

    from stackgan.training import precision as precision_lib

    tf.config.experimental.enable_tensor_float_32_execution(precision != IEEE)
    policy = precision_lib.POLICIES["float32" if precision == IEEE else precision]
    gan, size = step_bench._build(cfg, stage, policy)
    batch = step_bench.make_batch(cfg, size, batch_size)
    step = tf.function(gan.train_step, jit_compile=True)
    name = program_name(precision, stage, batch_size)
    names = {id(v.handle): v.path for v in gan.variables}
    for optimizer in (gan.d_optimizer, gan.g_optimizer):
        names.update({id(v.handle): v.path for v in optimizer.variables})
    fields, values = write_program(step, batch, names, out, name)
    manifest = {
        **fields, "precision": precision, "stage": stage, "batch": batch_size,
        "resolution": size, "tf_flops": flops,
        "tensorflow": tf.__version__, "exported_on": cpu_model(),
    }  # fmt: skip
    if reference:
        batch_count = len(batch)
        variables = step.get_concrete_function(batch).captured_inputs
        logs = step(batch)  # TensorFlow's own step, jit-compiled on this CPU, on `values`
        after = [_read(h) for h in variables]
        arrays = {f"arg{i}": v for i, v in enumerate(values)}
        arrays.update({f"log_{k}": np.asarray(logs[k]) for k in manifest["log_names"]})
        arrays.update({f"after{batch_count + i}": v for i, v in enumerate(after)})
        np.savez(os.path.join(out, f"{name}.reference.npz"), **arrays)
        manifest["reference"] = f"{name}.reference.npz"
    with open(os.path.join(out, f"{name}.json"), "w") as f:
        json.dump(manifest, f)
    return manifest


def export(args) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # the v1 profiler API prints a deprecation notice
    import bench_train_step as step_bench

    from stackgan import config as config_lib

    cfg = config_lib.get_profile(args.profile).with_overrides(args.set)
    os.makedirs(args.out, exist_ok=True)
    todo = settings(args.stage, args.batch or ([64] if not args.stage else None))
    for stage, batch_size in todo:
        flops = step_bench.count_flops(cfg, stage, batch_size)
        for precision in args.precision or EXPORTED_PRECISIONS:
            start = time.perf_counter()
            m = export_program(cfg, precision, stage, batch_size, args.out, flops, args.reference)
            size = os.path.getsize(os.path.join(args.out, m["hlo"])) / 2**20
            print(
                f"{m['name']}: {len(m['args'])} arguments, {flops / 1e12:.3f} TFLOP per "
                f"iteration, module {size:.1f} MiB ({time.perf_counter() - start:.0f} s)",
                flush=True,
            )


# ------------------------------------------------------------------------------------ JAX side


def _jax():
    """JAX, with 64-bit integers on: the modules take int64 arguments (the noise seed's state,
    step counters), which JAX would otherwise narrow to int32."""
    try:
        import jax
    except ImportError:
        raise SystemExit(
            "bench_xla_program: JAX is not installed; pip install -r requirements/bench-jax.txt"
        ) from None

    jax.config.update("jax_enable_x64", True)
    return jax


RUN_ORDER = ("bfloat16", "float32", "float16", IEEE)  # `auto`'s choice on a GPU first


def _manifests(folder: str) -> list[dict]:
    """The folder's program manifests, in RUN_ORDER's precisions, Stage-I before Stage-II."""
    if not os.path.isdir(folder):
        raise SystemExit(f"bench_xla_program: --programs {folder}: no such folder")
    manifests = []
    for name in (f for f in os.listdir(folder) if f.endswith(".json")):
        with open(os.path.join(folder, name)) as f:
            manifests.append(json.load(f))
    if not manifests:
        raise SystemExit(f"bench_xla_program: --programs {folder}: no exported programs "
                         "(*.json beside their *.hlo.pb; write them with `export`)")  # fmt: skip
    return sorted(
        manifests, key=lambda m: (RUN_ORDER.index(m["precision"]), m["stage"], m["batch"])
    )


def _without_mhlo_copies(module: bytes) -> str:
    """The StableHLO module as text, its `mhlo.copy` ops (TensorFlow copies the values it
    returns) written as reshapes to the same shape, which are the identity: newer jaxlibs
    (0.11) refuse the last MHLO op where 0.10 compiled it."""
    from jax._src.interpreters import mlir
    from jax._src.lib.mlir import ir

    with mlir.make_ir_context():
        text = str(ir.Module.parse(module))
    text = re.sub(
        r"mhlo\.copy (%[\w#.:]+) : (tensor<[^>]*>)", r"stablehlo.reshape \1 : (\2) -> \2", text
    )
    return text.replace('"mhlo.copy"(', '"stablehlo.reshape"(')


def _compile(folder: str, manifest: dict, device):
    """The manifest's module compiled for `device`, and {output index: parameter number} of the
    variables the step updates."""
    from jax._src import compiler
    from jax._src.lib import xla_client as xc

    with open(os.path.join(folder, manifest["hlo"]), "rb") as f:
        proto = f.read()
    module = _without_mhlo_copies(xc._xla.mlir.hlo_to_stablehlo(proto))
    options = compiler.get_compile_options(num_replicas=1, num_partitions=1)
    try:
        executable = device.client.compile_and_load(module, xc.DeviceList((device,)), options)
    except TypeError:  # jaxlib releases that take the devices as a plain sequence
        executable = device.client.compile_and_load(module, [device], options)
    return executable, {int(o): int(p) for o, p in manifest["aliases"]}


def filled(arg: dict, rng):
    """A NumPy value for one manifest argument, as its fill says: its exact values, images
    uniform in [-1, 1], else a normal of its mean and spread (a variable's initial ones)."""
    import numpy as np

    if "values" in arg:
        return np.asarray(arg["values"], arg["dtype"]).reshape(arg["shape"])
    if arg["name"] in ("image", "wrong_image"):
        return rng.uniform(-1, 1, arg["shape"]).astype(arg["dtype"])
    return (rng.standard_normal(arg["shape"]) * arg["std"] + arg["mean"]).astype(arg["dtype"])


def _arguments(manifest: dict, device, exact: dict | None = None) -> list:
    """The module's arguments on `device`: `exact` values where given, else filled as the
    manifest says."""
    import jax
    import numpy as np

    rng = np.random.default_rng(0)
    return [
        jax.device_put(exact[f"arg{i}"] if exact is not None else filled(a, rng), device)
        for i, a in enumerate(manifest["args"])
    ]


def _step(executable, arguments: list, aliases: dict[int, int]) -> list:
    """One iteration: runs the module and puts its updated variables where it reads them."""
    outputs = executable.execute_sharded(arguments).disassemble_into_single_device_arrays()
    outputs = [o[0] for o in outputs]
    for out_index, param in aliases.items():
        arguments[param] = outputs[out_index]
    return outputs


def matmul_tflops(dtype: str, n: int, device) -> float:
    """The device's best n^3 matmul rate in TFLOP/s, in `dtype` (float32 at XLA's default
    precision, TF32 on an Ampere-or-later GPU; `float32-ieee` at HIGHEST)."""
    import jax
    import jax.numpy as jnp

    precision = jax.lax.Precision.HIGHEST if dtype == IEEE else None
    dt = jnp.float32 if dtype in ("float32", IEEE) else jnp.dtype(dtype)
    key = jax.random.PRNGKey(0)
    a = jax.device_put(jax.random.normal(key, (n, n), jnp.float32).astype(dt), device)
    b = jax.device_put((jax.random.normal(key, (n, n), jnp.float32) / n**0.5).astype(dt), device)
    chain = 8

    @jax.jit
    def products(x, y):
        for _ in range(chain):
            x = jnp.dot(x, y, precision=precision)
        return x

    products(a, b).block_until_ready()
    best = 0.0
    for _ in range(5):
        start = time.perf_counter()
        products(a, b).block_until_ready()
        best = max(best, chain * 2 * n**3 / (time.perf_counter() - start) / 1e12)
    return best


def _time_program(args, m: dict, device, peaks: dict) -> dict:
    """Compiles `m`'s program, runs its warm-up and one CUB-sized epoch; the measurements.
    `peaks` caches the matmul rate of each precision."""
    import jax

    start = time.perf_counter()
    executable, aliases = _compile(args.programs, m, device)
    compile_s = time.perf_counter() - start
    arguments = _arguments(m, device)
    for _ in range(args.warmup):
        outputs = _step(executable, arguments, aliases)
    jax.block_until_ready(outputs)
    iterations = CUB_TRAIN_IMAGES // m["batch"]  # the trainer drops the last partial batch
    start = time.perf_counter()
    for _ in range(iterations):
        outputs = _step(executable, arguments, aliases)
    jax.block_until_ready(outputs)
    epoch_s = time.perf_counter() - start
    logs = {n: float(outputs[i]) for i, n in enumerate(m["log_names"])}
    if m["precision"] not in peaks:
        peaks[m["precision"]] = matmul_tflops(m["precision"], args.matmul_size, device)
    memory = executable.get_compiled_memory_stats()
    tflops = m["tf_flops"] * iterations / epoch_s / 1e12
    return {
        "name": m["name"], "precision": m["precision"], "stage": m["stage"], "batch": m["batch"],
        "iterations": iterations, "epoch_s": epoch_s, "ms_per_iter": 1e3 * epoch_s / iterations,
        "images_per_s": iterations * m["batch"] / epoch_s, "tflops": tflops,
        "tf_flops": m["tf_flops"],
        "matmul_peak_tflops": peaks[m["precision"]],
        "percent_of_peak": 100 * tflops / peaks[m["precision"]],
        # XLA's plan of the step's device memory: arguments, results and temporaries
        "memory_gib": (memory.argument_size_in_bytes + memory.output_size_in_bytes
                       + memory.temp_size_in_bytes - memory.alias_size_in_bytes) / 2**30,
        "compile_s": compile_s,
        "finite_logs": all(v == v and abs(v) != float("inf") for v in logs.values()),
        "logs": logs, "device": device.device_kind, "jax": jax.__version__,
    }  # fmt: skip


def run(args) -> int:
    """Times each program; 1 if any failed (the others are still timed and written)."""
    jax = _jax()
    device = jax.devices()[0]
    print(f"device: {device.device_kind} ({device.platform}); JAX {jax.__version__}; host "
          f"{cpu_model()}", flush=True)  # fmt: skip
    results, peaks, failed = [], {}, 0
    for m in _manifests(args.programs):
        if args.only and m["name"] not in args.only:
            continue
        try:
            r = _time_program(args, m, device, peaks)
        except Exception as e:  # one program's failure (a jaxlib API, memory) spares the rest
            print(f"{m['name']}: failed: {type(e).__name__}: {str(e)[:500]}", flush=True)
            failed += 1
            continue
        results.append(r)
        print(
            f"{r['name']:<24} epoch {r['epoch_s']:6.2f} s ({r['iterations']} x {r['batch']}, "
            f"{r['ms_per_iter']:.1f} ms/iter) {r['images_per_s']:7.0f} img/s "
            f"{r['tflops']:6.1f} TFLOP/s = {r['percent_of_peak']:4.1f} % of "
            f"{r['matmul_peak_tflops']:.0f}  memory {r['memory_gib']:.1f} GiB  "
            f"compile {r['compile_s']:.0f} s  d_loss {r['logs'].get('d_loss', float('nan')):.3f}",
            flush=True,
        )
        if args.out:
            with open(args.out + ".partial", "w") as f:
                json.dump(results, f, indent=1)
            os.replace(args.out + ".partial", args.out)
    return 1 if failed else 0


# (largest relative difference of the logs, relative L2 difference of D's gradients) that
# rounding explains: XLA's fusion order differs between its versions. The bf16 bounds are what
# bf16's 8-bit mantissa gave on the paper's and the demo's networks (logs to 8 %, D's
# gradients to 5-18 %): at that precision the check says less than in float32.
CHECK_TOLERANCE = {"float32": (1e-3, 1e-2), IEEE: (1e-3, 1e-2), "bfloat16": (0.1, 0.25),
                   "float16": (0.1, 0.25)}  # fmt: skip


def check(args) -> int:
    """Runs each exported program that has a reference on its exact arguments and compares
    its logs (losses, accuracies, KL), its gradients and its counters and seeds with
    TensorFlow's own step's; 1 if any differs by more than rounding explains.

    The gradients are read from Adam's first moments, (1 - beta_1) x gradient after one step.
    D's are compared; G's are printed, not held to the tolerance: G's gradient is taken through
    the D that the step has just updated, and Adam's first update is +-lr wherever a gradient
    is nonzero, so a D gradient that is zero but for rounding moves its weight by +-lr either
    way and G's gradient with it. For the same reason the weights' updates are not compared."""
    import numpy as np

    jax = _jax()
    device = jax.devices(args.platform)[0]
    failed = 0
    for m in _manifests(args.programs):
        if "reference" not in m:
            continue
        reference = np.load(os.path.join(args.programs, m["reference"]))
        executable, aliases = _compile(args.programs, m, device)
        outputs = _step(executable, _arguments(m, device, reference), aliases)
        logs = max(
            float(abs(float(outputs[i]) - reference[f"log_{n}"]) / (abs(reference[f"log_{n}"]) + 1e-3))
            for i, n in enumerate(m["log_names"])
        )  # fmt: skip
        sums = {"d": [0.0, 0.0, 0], "g": [0.0, 0.0, 0]}  # squared diff, squared, count
        integers_equal = True
        for out_index, param in aliases.items():
            ours, theirs = np.asarray(outputs[out_index]), reference[f"after{param}"]
            name = m["args"][param]["name"]
            if ours.dtype.kind != "f":
                integers_equal &= bool(np.array_equal(ours, theirs))
            elif name.endswith("_momentum") and name[:1] in sums:  # d_adam/..., g_adam/...
                s = sums[name[:1]]
                s[0] += float(np.sum((ours.astype(np.float64) - theirs) ** 2))
                s[1] += float(np.sum(theirs.astype(np.float64) ** 2))
                s[2] += 1
        d, g = ((s[0] / s[1]) ** 0.5 if s[1] else float("inf") for s in sums.values())
        log_tolerance, gradient_tolerance = CHECK_TOLERANCE[m["precision"]]
        ok = logs <= log_tolerance and d <= gradient_tolerance and integers_equal
        failed += not ok
        print(
            f"{m['name']}: logs {', '.join(m['log_names'])} within {logs:.1e} (relative); "
            f"D's gradients ({sums['d'][2]} variables) within {d:.1e} (relative L2), G's "
            f"({sums['g'][2]}) {g:.1e}; counters and seeds "
            f"{'equal' if integers_equal else 'DIFFERENT'}: "
            f"{'the same step' if ok else 'DIFFERENT'}",
            flush=True,
        )
    return 1 if failed else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export", help="write the XLA programs (TensorFlow)")
    add_setting_arguments(e)
    e.add_argument("--precision", choices=EXPORTED_PRECISIONS, action="append")
    e.add_argument("--out", required=True)
    e.add_argument("--reference", action="store_true",
                   help="also the arguments' values and TensorFlow's own step's outputs")  # fmt: skip
    e.add_argument("--set", action="append", default=[], help="config override")
    r = sub.add_parser("run", help="time the programs on the first device (JAX)")
    r.add_argument("--programs", required=True)
    r.add_argument("--only", action="append", help="program name(s) to run")
    r.add_argument("--warmup", type=int, default=3)
    r.add_argument("--matmul-size", type=int, default=8192)
    r.add_argument("--out", help="results JSON, rewritten after each program")
    c = sub.add_parser("check", help="the programs' outputs against TensorFlow's (JAX)")
    c.add_argument("--programs", required=True)
    c.add_argument("--platform", default="cpu")
    args = p.parse_args()
    if args.command == "export":
        export(args)
    elif args.command == "run":
        return run(args)
    else:
        return check(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
