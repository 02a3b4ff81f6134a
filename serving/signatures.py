"""The generator's serving contract in one place (docs/ARCHITECTURE.md, "Serving contract"):
the signature names, the inputs each one takes, each input's dtype, and the check that clients
run before a request leaves Python.

| signature | inputs | noise |
| --- | --- | --- |
| `serving_default` | `embedding` | drawn fresh for every request |
| `seeded` | `embedding`, `seed` | from the seed: equal seeds, equal images |
| `generate_with_noise` | `embedding`, `noise`, `ca_noise` (`ca_noise_2` with Stage-II) | the caller's |
| `text` | `caption` | drawn fresh for every request |
| `text_seeded` | `caption`, `seed` | from the seed |

The text signatures exist only when the export includes a text encoder. Beside them,
`assets.extra/generator.json` (`SAMPLING_FILE`) records how the signatures that draw their own
noise sample: {"truncation": psi}, the noise z and the CA eps from N(0, psi^2).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

# where SavedModel tools expect extra files (as the classifier's info)
SAMPLING_FILE = "assets.extra/generator.json"

DEFAULT = "serving_default"
SEEDED = "seeded"
NOISE = "generate_with_noise"
TEXT = "text"
TEXT_SEEDED = "text_seeded"

INPUTS: dict[str, tuple[str, ...]] = {
    DEFAULT: ("embedding",),
    SEEDED: ("embedding", "seed"),
    NOISE: ("embedding", "noise", "ca_noise", "ca_noise_2"),
    TEXT: ("caption",),
    TEXT_SEEDED: ("caption", "seed"),
}
# inputs a signature may lack: ca_noise_2 exists only in Stage-II exports
OPTIONAL_INPUTS = {NOISE: ("ca_noise_2",)}

FLOAT_INPUTS = ("embedding", "noise", "ca_noise", "ca_noise_2")
DTYPES = {**dict.fromkeys(FLOAT_INPUTS, "float32"), "seed": "int64", "caption": "string"}
RANKS = {**dict.fromkeys(FLOAT_INPUTS, 2), "seed": 0, "caption": 1}


def signature_for(input_names: Iterable[str]) -> str:
    """The signature that takes exactly these inputs."""
    names = set(input_names)
    for signature, expected in INPUTS.items():
        optional = set(OPTIONAL_INPUTS.get(signature, ()))
        if set(expected) - optional <= names <= set(expected):
            return signature
    raise ValueError(
        f"no signature takes the inputs {sorted(names)}; the signatures take: "
        + "; ".join(f"{name}: {', '.join(inputs)}" for name, inputs in INPUTS.items())
    )


def check_signature_inputs(signature: str, input_names: Iterable[str]) -> None:
    """Raises when `input_names` are not exactly the inputs of `signature`. TF Serving's REST
    columnar form ignores an input the signature lacks, so a `seed` sent to `serving_default`
    would otherwise be dropped silently."""
    if signature not in INPUTS:
        raise ValueError(f"unknown signature {signature!r}; the generator has {sorted(INPUTS)}")
    names = set(input_names)
    expected = set(INPUTS[signature])
    optional = set(OPTIONAL_INPUTS.get(signature, ()))
    extra, missing = names - expected, expected - optional - names
    if extra or missing:
        hint = f"; use signature {signature_for(names)!r}" if _has_signature(names) else ""
        raise ValueError(
            f"signature {signature!r} takes {', '.join(INPUTS[signature])}: "
            f"extra {sorted(extra)}, missing {sorted(missing)}{hint}"
        )


def _has_signature(names: set[str]) -> bool:
    try:
        signature_for(names)
    except ValueError:
        return False
    return True


def checked_input(name: str, value) -> np.ndarray:
    """`value` as the array the signature takes for input `name`, or a TypeError / ValueError
    naming the input. Arrays and tensors must already carry the input's dtype (float32, int64);
    nothing is cast quietly. Plain Python numbers and lists, which carry no dtype (as in JSON),
    are converted when their values are of the right kind (numbers for float inputs, an integer
    for `seed`, strings for `caption`)."""
    if name not in DTYPES:
        raise ValueError(f"unknown input {name!r}; the generator's inputs are {sorted(DTYPES)}")
    if hasattr(value, "numpy"):  # a tf.Tensor
        value = value.numpy()
    typed = isinstance(value, (np.ndarray, np.generic))
    try:
        array = np.asarray(value, dtype=object if name == "caption" and not typed else None)
    except ValueError as error:  # ragged nested lists
        raise ValueError(f"input {name!r} is not a regular array: {error}") from None
    expected = DTYPES[name]
    if expected == "string":
        array = _strings(name, array)
    elif typed and array.dtype != np.dtype(expected):
        raise TypeError(
            f"input {name!r} must be {expected}, got {array.dtype}"
            f" (convert it with .astype(np.{expected}))"
        )
    elif not typed:
        kinds = "iu" if expected == "int64" else "iuf"
        if array.dtype.kind not in kinds:
            what = "an integer" if expected == "int64" else "numbers"
            raise TypeError(
                f"input {name!r} must be {expected} ({what}), got {_kind_name(array)} values"
            )
        array = array.astype(expected)
    if array.ndim != RANKS[name]:
        shape = {0: "a scalar", 1: "a list [N]", 2: "a matrix [N, width]"}[RANKS[name]]
        raise ValueError(f"input {name!r} must be {shape}, got shape {list(array.shape)}")
    if name == "seed" and int(array) < 0:
        raise ValueError(f"input 'seed' must be >= 0, got {int(array)}")
    return array


def _strings(name: str, array: np.ndarray) -> np.ndarray:
    """Caption arrays (str or UTF-8 bytes) as an object array of str."""
    if array.dtype.kind not in "USO":
        raise TypeError(f"input {name!r} must be string, got {array.dtype}")
    out = np.empty(array.shape, dtype=object)
    for index, item in np.ndenumerate(array):
        if isinstance(item, bytes):
            try:
                item = item.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(f"input {name!r}: item {index} is not UTF-8 ({error})") from None
        if not isinstance(item, str):
            raise TypeError(
                f"input {name!r} must be string, got {type(item).__name__} at index {index}"
            )
        out[index] = item
    return out


def _kind_name(array: np.ndarray) -> str:
    if array.dtype.kind == "O" and array.size:
        return type(array.flat[0]).__name__
    return {"b": "bool", "f": "float", "U": "str", "S": "bytes"}.get(array.dtype.kind, "mixed")


def describe_sampling(truncation: float | None) -> str:
    """How a generator's own noise is drawn, for reports: "truncation 0.5 (the paper: 1)"."""
    if truncation is None:
        return "truncation not recorded (an export from before it was)"
    return f"truncation {truncation:g} ({'the paper' if truncation == 1 else 'the paper: 1'})"
