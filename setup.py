"""Installs the `stackgan` distribution.

The repository keeps the TFX-style top-level folders (`pipeline/`, `components/`, `schemas/`,
`tfrecords/`, `serving/`) next to the model package `stackgan/`. They are installed as
sub-packages of one namespace (`stackgan.pipeline`, `stackgan.components`, ...) so nothing with
a generic name such as `pipeline` or `serving` lands at the top of site-packages.

Dependencies: `install_requires` names what the code imports. The tested, pinned set lives in
`requirements/lock.txt` and is installed with `--no-deps` by `scripts/setup.sh`, because TFX 1.21
pins ml-metadata 1.21 and tensorflow-data-validation 1.21, which have no Linux wheels for
Python 3.11 (see README, "Why the dependency override").
"""

from pathlib import Path

from setuptools import find_packages, setup

# folder on disk -> package name once installed
_FOLDERS = {
    "stackgan": "stackgan",
    "pipeline": "stackgan.pipeline",
    "components": "stackgan.components",
    "schemas": "stackgan.schemas",
    "tfrecords": "stackgan.tfrecords",
    "serving": "stackgan.serving",
}


def _packages_and_dirs():
    packages, package_dir = [], {}
    for folder, name in _FOLDERS.items():
        packages.append(name)
        package_dir[name] = folder
        for sub in find_packages(folder):
            packages.append(f"{name}.{sub}")
            package_dir[f"{name}.{sub}"] = f"{folder}/{sub.replace('.', '/')}"
    return packages, package_dir


_PACKAGES, _PACKAGE_DIR = _packages_and_dirs()

setup(
    name="stackgan-tfx",
    version="0.1.0",
    description="StackGAN (Zhang et al. 2017) on CUB-200-2011 as a TFX pipeline, in TensorFlow/Keras 3.",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    packages=_PACKAGES,
    package_dir=_PACKAGE_DIR,
    package_data={"stackgan.schemas": ["*.pbtxt"]},
    install_requires=[
        "tensorflow==2.21.0",
        "keras>=3.10,<4",
        "tfx==1.21.0",  # installed with the override described above
        "tfx-bsl==1.21.0",
        "tensorflow-metadata==1.21.0",
        "tensorflow-serving-api>=2.19,<2.22",
        "apache-beam>=2.60,<3",
        "tensorflow-datasets>=4.9",
        "kfp>=2.10,<3",
        "pillow>=10",
        "numpy>=1.26",
    ],
    entry_points={"console_scripts": ["stackgan = stackgan.cli:main"]},
    license="Apache-2.0",
)
