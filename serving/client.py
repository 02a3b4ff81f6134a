"""Requests to a TF Serving server hosting the generator: REST JSON bodies, gRPC PredictRequest
protos, and a standard-library REST sender (for a server on this machine).

Every builder checks each input's dtype against the serving contract
(`stackgan.serving.signatures`) and raises a TypeError naming the input; the signature is the
one that takes exactly the given inputs (`embedding` alone -> `serving_default`, with `seed` ->
`seeded`, `caption` -> `text`, ...), or must match them when named.

REST has two body forms (https://www.tensorflow.org/tfx/serving/api_rest):
- columnar `{"signature_name": ..., "inputs": {"embedding": [[...]], "seed": 7}}`: any inputs,
  scalars included; the response is `{"outputs": {"image_64": [...], ...}}`.
- row `{"signature_name": ..., "instances": [{"embedding": [...]}, ...]}`: one object per
  example, so every input must be batched; a scalar `seed` cannot be sent this way. The
  response is `{"predictions": [{"image_64": ...}, ...]}`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping

import numpy as np

from stackgan.serving import signatures

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def embedding_inputs(embeddings, seed: int | None = None) -> dict[str, np.ndarray]:
    """The inputs of `serving_default` (fresh noise), or with a seed those of `seeded`."""
    inputs = {"embedding": embeddings}
    if seed is not None:
        inputs["seed"] = seed
    return checked_inputs(inputs)


def caption_inputs(captions, seed: int | None = None) -> dict[str, np.ndarray]:
    """The inputs of `text` (fresh noise), or with a seed those of `text_seeded`."""
    inputs = {"caption": captions}
    if seed is not None:
        inputs["seed"] = seed
    return checked_inputs(inputs)


def noise_inputs(embeddings, noise, ca_noise, ca_noise_2=None) -> dict[str, np.ndarray]:
    """The inputs of `generate_with_noise` (`ca_noise_2` only for Stage-II exports)."""
    inputs = {"embedding": embeddings, "noise": noise, "ca_noise": ca_noise}
    if ca_noise_2 is not None:
        inputs["ca_noise_2"] = ca_noise_2
    return checked_inputs(inputs)


def checked_inputs(inputs: Mapping) -> dict[str, np.ndarray]:
    """Each input as the array its signature takes; a wrong dtype (a float64 embedding, a float
    seed, ...) raises a TypeError naming the input and the dtype it must have. Nothing is cast
    quietly: TF Serving would refuse the request with a message that names no input."""
    return {name: signatures.checked_input(name, value) for name, value in inputs.items()}


def _request(inputs: Mapping, signature_name: str | None) -> tuple[str, dict[str, np.ndarray]]:
    """(signature name, checked inputs): the signature is the one that takes exactly these
    inputs when not given, and must take exactly these inputs when given."""
    inputs = checked_inputs(inputs)
    if signature_name is None:
        signature_name = signatures.signature_for(inputs)
    else:
        signatures.check_signature_inputs(signature_name, inputs)
    return signature_name, inputs


def rest_body(inputs: Mapping, signature_name: str | None = None, form: str = "inputs") -> dict:
    """The JSON body of a `:predict` call, in the columnar ("inputs") or row ("instances") form.
    `signature_name` defaults to the signature that takes exactly these inputs."""
    signature_name, inputs = _request(inputs, signature_name)
    if form == "inputs":
        return {
            "signature_name": signature_name,
            "inputs": {name: value.tolist() for name, value in inputs.items()},
        }
    if form != "instances":
        raise ValueError(f"form must be 'inputs' or 'instances', got {form!r}")
    rows = {}
    for name, value in inputs.items():
        if value.ndim == 0:
            raise ValueError(
                f"input '{name}' is a scalar: the row ('instances') form cannot carry it; "
                "use form='inputs'"
            )
        rows[name] = len(value)
    if len(set(rows.values())) != 1:
        raise ValueError(f"the row form needs inputs with equal batch sizes, got {rows}")
    count = next(iter(rows.values()))
    instances = [{name: value[i].tolist() for name, value in inputs.items()} for i in range(count)]
    return {"signature_name": signature_name, "instances": instances}


def rest_url(model_name: str, host: str = "localhost", port: int = 8501, version=None) -> str:
    path = f"/v1/models/{urllib.parse.quote(model_name)}"
    if version is not None:
        path += f"/versions/{int(version)}"
    return f"http://{host}:{port}{path}:predict"


def _output(name: str, value) -> np.ndarray:
    """Images are uint8; the text signatures' `embedding` is float32."""
    return np.asarray(value, np.uint8 if name.startswith("image_") else np.float32)


def parse_rest_response(response: Mapping) -> dict[str, np.ndarray]:
    """The output arrays (uint8 images, float32 `embedding`) from either response form."""
    if "error" in response:
        raise RuntimeError(f"TF Serving error: {response['error']}")
    if "outputs" in response:
        outputs = response["outputs"]
        if not isinstance(outputs, Mapping):  # a single-output model answers with a bare list
            raise ValueError("expected named outputs (image_64, image_256) in the response")
        return {name: _output(name, value) for name, value in outputs.items()}
    if "predictions" in response:
        rows = response["predictions"]
        return {name: _output(name, [row[name] for row in rows]) for name in rows[0]}
    raise ValueError(f"not a predict response (keys: {sorted(response)})")


def post_predict(url: str, body: Mapping, timeout: float = 60.0) -> dict[str, np.ndarray]:
    """POSTs `body` to a TF Serving REST endpoint on this machine and returns the images."""
    host = urllib.parse.urlsplit(url).hostname
    if host not in LOCAL_HOSTS:
        raise ValueError(f"post_predict only talks to a local server ({LOCAL_HOSTS}), got {host}")
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return parse_rest_response(json.load(reply))
    except urllib.error.HTTPError as error:  # TF Serving puts its message in a JSON body
        detail = error.read().decode(errors="replace")
        raise RuntimeError(f"{url}: HTTP {error.code}: {detail}") from None


def grpc_request(
    model_name: str,
    inputs: Mapping,
    signature_name: str | None = None,
    version: int | None = None,
):
    """A `tensorflow.serving.PredictRequest` for `PredictionService.Predict`; `signature_name`
    defaults to the signature that takes exactly these inputs."""
    signature_name, inputs = _request(inputs, signature_name)
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = int(version)
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


def parse_grpc_response(response) -> dict[str, np.ndarray]:
    """The arrays of a `PredictResponse`."""
    import tensorflow as tf

    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}
