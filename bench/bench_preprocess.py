"""Preprocessing throughput (images/s) and peak memory: ours vs the original's approach.

Ours: the CubExampleGen conversion (Beam, in-process DirectRunner and 2 worker processes),
streaming each shard to disk. Baseline: what StackGAN's misc/preprocess_birds.py does, a
per-image PIL loop that keeps every 304 and 76 crop of the split in lists and pickles them.
Each variant runs in a fresh process; peak memory is that process's max RSS (for the 2-worker
run, the largest of the driver and the workers); CPU is its user + system seconds (workers
included). The time counts the variant's imports (for ours, `import apache_beam`, which a TFX
executor has already paid), and is also given without them. The header says whether Python
finds Beam's modules byte-compiled: where it does not (an install without compiling, and
PYTHONDONTWRITEBYTECODE set), every run compiles Beam's sources again, ~1 s of its import on
the 2-core Xeon. `--bytecode-cache DIR` runs every variant with PYTHONPYCACHEPREFIX=DIR (after
one untimed import fills it), as an install with compiled bytecode would. Run:

    .venv/bin/python bench/bench_preprocess.py --counts 1000 4000
    .venv/bin/python bench/bench_preprocess.py --gzip-levels   # shard writer, real records
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from replica_dataset import write_replica

REPO = Path(__file__).resolve().parents[1]


def baseline(root: Path, out: Path) -> int:
    """The original's loop: crop, 304 bicubic, 76 from 304, everything kept, then pickled."""
    import numpy as np
    from PIL import Image

    from stackgan.data import cub

    dataset = cub.CubDataset(root)
    count = 0
    for split in cub.SPLITS:
        high, low = [], []
        for example in dataset.split(split):
            img = Image.open(example.image_path).convert("RGB")
            b = example.bbox
            r = int(0.75 * max(b.width, b.height))
            cx, cy = int((2 * b.x + b.width) / 2), int((2 * b.y + b.height) / 2)
            pixels = np.asarray(img)
            h, w = pixels.shape[:2]
            crop = pixels[max(0, cy - r) : min(h, cy + r), max(0, cx - r) : min(w, cx + r)]
            hr = Image.fromarray(crop).resize((304, 304), Image.BICUBIC)
            high.append(np.asarray(hr))
            low.append(np.asarray(hr.resize((76, 76), Image.BICUBIC)))
        out.mkdir(parents=True, exist_ok=True)
        with (out / f"{split}_304images.pickle").open("wb") as f:
            pickle.dump(high, f)
        with (out / f"{split}_76images.pickle").open("wb") as f:
            pickle.dump(low, f)
        count += len(high)
    return count


def ours(root: Path, out: Path, workers: int) -> int:
    import apache_beam as beam

    from stackgan import config
    from stackgan.components.cub_example_gen import generate

    args = ["--runner=FnApiRunner"]
    if workers > 1:
        args += ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"]
    report = generate.generate_examples(
        root, config.paper(), str(out), lambda: beam.Pipeline(argv=args)
    )
    return sum(c.written for c in report.splits.values())


def run_variant(variant: str, root: Path, out: Path, env: dict) -> dict:
    """Runs one variant in a fresh process and returns its timing, CPU time and peak memory."""
    code = (
        "import json, sys, time, resource; sys.path.insert(0, %r);"
        "t = time.perf_counter(); %s; imported = time.perf_counter() - t;"
        "import bench_preprocess as b; from pathlib import Path;"
        "t = time.perf_counter(); n = %s;"
        "dt = time.perf_counter() - t;"
        "me = resource.getrusage(resource.RUSAGE_SELF);"
        "kids = resource.getrusage(resource.RUSAGE_CHILDREN);"
        "cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime;"
        "print(json.dumps({'images': n, 'seconds': dt + imported, 'import_seconds': imported,"
        " 'cpu_seconds': cpu, 'peak_mb': max(me.ru_maxrss, kids.ru_maxrss) / 1024}))"
    )
    # what each variant imports before its first image: Beam (bigquery included) and the
    # converter's modules, or the loop's numpy and PIL
    imports = (
        "import numpy, PIL.Image; from stackgan.data import cub"
        if variant == "baseline"
        else OURS_IMPORTS
    )
    call = {
        "baseline": f"b.baseline(Path({str(root)!r}), Path({str(out)!r}))",
        "ours-1": f"b.ours(Path({str(root)!r}), Path({str(out)!r}), 1)",
        "ours-2": f"b.ours(Path({str(root)!r}), Path({str(out)!r}), 2)",
    }[variant]
    done = subprocess.run(
        [sys.executable, "-c", code % (str(Path(__file__).parent), imports, call)],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


OURS_IMPORTS = "import apache_beam; from stackgan.components.cub_example_gen import generate"


def variant_env(bytecode_cache: Path | None) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if bytecode_cache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(bytecode_cache)
        # untimed: compiles every module both variants import into the cache
        subprocess.run([sys.executable, "-c", OURS_IMPORTS], env=env, check=True)
    return env


def beam_bytecode(env: dict) -> str:
    """Whether Python finds apache_beam's modules byte-compiled in the variants' environment."""
    code = (
        "import importlib.util, os, sys; spec = importlib.util.find_spec('apache_beam');"
        "print(os.path.exists(spec.cached), sys.flags.dont_write_bytecode)"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    cached, no_writing = done.stdout.split()
    if cached == "True":
        return "byte-compiled"
    return "NOT byte-compiled: each run compiles its sources" + (
        " (PYTHONDONTWRITEBYTECODE set)" if no_writing == "1" else ""
    )


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or "unknown CPU"


def gzip_levels(sample: Path, levels: tuple[int, ...] = (0, 1, 6)) -> None:
    """The shard writer's time and size at each gzip level, on the real sample's records."""
    import dataclasses

    from stackgan import config
    from stackgan.components.cub_example_gen import convert
    from stackgan.data import cub
    from stackgan.tfrecords.shard_writer import TFRecordShardWriter

    examples = [example for _, example in cub.CubDataset(sample)]
    data = config.paper().data
    for encoding in convert.IMAGE_ENCODINGS:
        encoded = dataclasses.replace(data, image_encoding=encoding)
        outcomes = (convert.convert_example(e, encoded, None) for e in examples)
        records = [o.example for o in outcomes if o.example is not None]
        framed = sum(len(r) + 16 for r in records)  # TFRecord framing: 16 bytes a record
        print(f"{encoding}: {len(records)} records, {framed / len(records) / 1e3:.1f} KB each")
        with tempfile.TemporaryDirectory() as tmp:
            path = f"{tmp}/shard.gz"
            for level in levels:
                best = float("inf")
                for _ in range(5):  # best of 5: the machine may be shared
                    start = time.thread_time()
                    with TFRecordShardWriter(path, level) as writer:
                        for record in records:
                            writer.write(record)
                    best = min(best, time.thread_time() - start)
                size = os.path.getsize(path)
                print(
                    f"  level {level}: {best / len(records) * 1e3:6.3f} ms a record"
                    f" ({framed / best / 1e6:6.0f} MB/s), size {size / framed - 1:+6.1%}"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 4000])
    parser.add_argument("--sample", type=Path, default=REPO.parent / "shared" / "cub-sample")
    parser.add_argument("--variants", nargs="+", default=["baseline", "ours-1", "ours-2"])
    parser.add_argument("--bytecode-cache", type=Path, help="PYTHONPYCACHEPREFIX for every run")
    parser.add_argument("--gzip-levels", action="store_true", help="time the shard writer only")
    args = parser.parse_args()
    print(
        f"host: {cpu_model()}, {os.cpu_count()} CPUs, Python {platform.python_version()};"
        f" load average {os.getloadavg()[0]:.1f}"
    )
    if args.gzip_levels:
        gzip_levels(args.sample)
        return
    env = variant_env(args.bytecode_cache)
    print(f"apache_beam: {beam_bytecode(env)}")
    for count in args.counts:
        with tempfile.TemporaryDirectory() as tmp:
            root = write_replica(args.sample, Path(tmp) / "data", count)
            for variant in args.variants:
                out = Path(tmp) / f"out-{variant}"
                result = run_variant(variant, root, out, env)
                size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
                images, seconds = result["images"], result["seconds"]
                after_import = seconds - result["import_seconds"]
                print(
                    f"N={count:5d} {variant:<9} {images / seconds:7.1f} images/s"
                    f"  {seconds:5.1f} s (imports {result['import_seconds']:4.1f} s;"
                    f" after them {images / after_import:6.1f} images/s)"
                    f"  CPU {result['cpu_seconds']:5.1f} s  peak {result['peak_mb']:5.0f} MB"
                    f"  output {size / 2**20:6.1f} MB  load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
                shutil.rmtree(out)


if __name__ == "__main__":
    main()
