"""Preprocessing throughput (images/s) and peak memory: ours vs the original's approach.

Ours: the CubExampleGen conversion (Beam, in-process DirectRunner and 2 worker processes),
streaming each shard to disk. Baseline: what StackGAN's misc/preprocess_birds.py does, a
per-image PIL loop that keeps every 304 and 76 crop of the split in lists and pickles them.
Each variant runs in a fresh process; peak memory is that process's max RSS (for the 2-worker
run, the largest of the driver and the workers). The time counts the variant's imports (for
ours, `import apache_beam`: ~2.7 s on the 2-core Xeon, which a TFX executor has already paid),
and is also given without them. Run:

    .venv/bin/python bench/bench_preprocess.py --counts 1000 4000
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


def run_variant(variant: str, root: Path, out: Path) -> dict:
    """Runs one variant in a fresh process and returns its timing and peak memory."""
    code = (
        "import json, sys, time, resource; sys.path.insert(0, %r);"
        "t = time.perf_counter(); %s; imported = time.perf_counter() - t;"
        "import bench_preprocess as b; from pathlib import Path;"
        "t = time.perf_counter(); n = %s;"
        "dt = time.perf_counter() - t;"
        "self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss;"
        "kids_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss;"
        "print(json.dumps({'images': n, 'seconds': dt + imported, 'import_seconds': imported,"
        " 'peak_mb': max(self_kb, kids_kb) / 1024}))"
    )
    # what each variant imports before its first image: Beam (~2.7 s, bigquery included) and
    # the converter's modules, or the loop's numpy and PIL
    imports = (
        "import numpy, PIL.Image; from stackgan.data import cub"
        if variant == "baseline"
        else "import apache_beam; from stackgan.components.cub_example_gen import generate"
    )
    call = {
        "baseline": f"b.baseline(Path({str(root)!r}), Path({str(out)!r}))",
        "ours-1": f"b.ours(Path({str(root)!r}), Path({str(out)!r}), 1)",
        "ours-2": f"b.ours(Path({str(root)!r}), Path({str(out)!r}), 2)",
    }[variant]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", code % (str(Path(__file__).parent), imports, call)],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 4000])
    parser.add_argument("--sample", type=Path, default=REPO.parent / "shared" / "cub-sample")
    parser.add_argument("--variants", nargs="+", default=["baseline", "ours-1", "ours-2"])
    args = parser.parse_args()
    print(
        f"host: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs,"
        f" Python {platform.python_version()}; load average {os.getloadavg()[0]:.1f}"
    )
    for count in args.counts:
        with tempfile.TemporaryDirectory() as tmp:
            root = write_replica(args.sample, Path(tmp) / "data", count)
            for variant in args.variants:
                out = Path(tmp) / f"out-{variant}"
                result = run_variant(variant, root, out)
                size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
                after_import = result["seconds"] - result["import_seconds"]
                print(
                    f"N={count:5d} {variant:<9} {result['images'] / result['seconds']:7.1f} images/s"
                    f"  {result['seconds']:7.1f} s (imports {result['import_seconds']:4.1f} s;"
                    f" after them {result['images'] / after_import:6.1f} images/s)"
                    f"  peak {result['peak_mb']:7.0f} MB  output {size / 2**20:7.1f} MB",
                    flush=True,
                )
                shutil.rmtree(out)


if __name__ == "__main__":
    main()
