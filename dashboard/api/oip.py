"""The Open Inference Protocol (v2: KServe, Triton) on the same port: health, server and model metadata, readiness and
`infer`, with JSON tensors and Triton's binary tensor extension (what `tritonclient` sends by default).

Thin like the other doors: tensors become rows (one per batch element, keyed by the schema's feature names) and go
through the same catalog, access rule, validation, micro-batcher and history; answers become tensors. How a model is
seen through the protocol:

- a model of one row of numbers (one 2-D input): one input `input`, FP32 [-1, n_features], features in schema order;
- any other model (named inputs, images): one input per feature, [-1, 1]: FP32 for a number, BYTES for a category,
  a text or an image (the file's bytes; in JSON, base64 text);
- outputs: classification `probabilities` FP64 [-1, K] and `label` BYTES [-1, 1]; binary `probability` FP64
  [-1, 1] and `label`; regression `prediction` FP64 [-1, 1].

A row that cannot be predicted fails the request (400, naming the row and why): the protocol has no per-row error.
Errors are the protocol's shape, {"error": "..."}.
"""

from __future__ import annotations

import json
import struct
import time
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dashboard.api import uploads
from dashboard.api.answers import answer_rows, counted, raw_outputs, record_rows
from dashboard.api.errors import ApiError
from dashboard.api.reading import catalog_of, models_of, read_body, version_for
from dashboard.common.logs import report
from dashboard.prediction import images
from dashboard.prediction.images import ImageFile
from dashboard.service import Served
from dashboard.service.serving import Serving
from dashboard.store.catalog import NAME

MATRIX_INPUT = "input"
HEADER_LENGTH = "inference-header-content-length"
NUMPY = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}


def bad(message: str) -> ApiError:
    """A request the protocol cannot take (400), in words that say what the model takes."""
    return ApiError(400, "bad_request", message)


def oip_routes(serving: Serving) -> list[Route]:
    """The /v2 routes of the Open Inference Protocol."""

    def guarded(work):
        async def endpoint(request: Request) -> Response:
            try:
                return await work(serving, request)
            except ApiError as exc:
                return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)
            except Exception as exc:
                report(exc, f"unexpected error answering {request.method} {request.url.path}")
                return JSONResponse({"error": "unexpected error; the details are in the server log"}, status_code=500)

        return endpoint

    model = "/v2/models/{name}"
    version = "/v2/models/{name}/versions/{version}"
    return [
        Route("/v2", guarded(_server_metadata), methods=["GET"]),
        Route("/v2/health/live", guarded(_live), methods=["GET"]),
        Route("/v2/health/ready", guarded(_ready), methods=["GET"]),
        Route(model, guarded(_metadata), methods=["GET"]),
        Route(version, guarded(_metadata), methods=["GET"]),
        Route(model + "/ready", guarded(_model_ready), methods=["GET"]),
        Route(version + "/ready", guarded(_model_ready), methods=["GET"]),
        Route(model + "/infer", guarded(_infer), methods=["POST"]),
        Route(version + "/infer", guarded(_infer), methods=["POST"]),
    ]


async def _server_metadata(serving: Serving, request: Request) -> Response:
    return JSONResponse({"name": "keras-prediction-dashboard", "version": "1", "extensions": ["binary_tensor_data"]})


async def _live(serving: Serving, request: Request) -> Response:
    return JSONResponse({"live": True})


async def _ready(serving: Serving, request: Request) -> Response:
    """Ready once the default model's default version is loaded (as /api/v1/ready)."""
    state, _, _ = serving.state(catalog_of(serving).default)
    return JSONResponse({"ready": state == "ready"}, status_code=200 if state == "ready" else 503)


def _model(serving: Serving, request: Request) -> str:
    """The model named in the path, if the caller may use it; 404 naming the ones they may."""
    name = request.path_params["name"]
    catalog = models_of(serving, request)
    if name not in catalog.names:
        shown = name if NAME.match(name) else "that name"
        raise ApiError(
            404, "not_found", f"model {shown} is not served here; models: {', '.join(catalog.names) or 'none'}"
        )
    return name


async def _loaded(serving: Serving, request: Request) -> Served:
    served, _ = await version_for(serving, request.path_params.get("version"), request, _model(serving, request))
    return served


async def _metadata(serving: Serving, request: Request) -> Response:
    served = await _loaded(serving, request)
    catalog = catalog_of(serving, request, served.version.model_name)
    return JSONResponse(
        {
            "name": served.version.model_name,
            "versions": catalog.labels,
            "platform": f"keras ({served.runtime})",
            "inputs": [{"name": n, "datatype": t, "shape": s} for n, t, s in inputs_of(served)],
            "outputs": [{"name": n, "datatype": t, "shape": s} for n, t, s in outputs_of(served)],
        }
    )


async def _model_ready(serving: Serving, request: Request) -> Response:
    name = _model(serving, request)
    catalog = catalog_of(serving, request, name)
    spec = request.path_params.get("version")
    version = catalog.get(spec) if spec else catalog.default
    state, _, _ = serving.state(version)
    body = {"name": name, "version": version.label, "ready": state == "ready"}
    return JSONResponse(body, status_code=200 if state == "ready" else 503)


def inputs_of(served: Served) -> list[tuple[str, str, list[int]]]:
    """(name, datatype, shape) of each input the protocol shows for this model."""
    schema = served.schema
    if not served.model.named_inputs and not schema.images:
        return [(MATRIX_INPUT, "FP32", [-1, len(schema.features)])]
    return [(f.name, "FP32" if f.type == "number" else "BYTES", [-1, 1]) for f in schema.features]


def outputs_of(served: Served) -> list[tuple[str, str, list[int]]]:
    output = served.schema.output
    if output.type == "classification":
        return [("probabilities", "FP64", [-1, len(output.labels)]), ("label", "BYTES", [-1, 1])]
    if output.type == "binary":
        return [("probability", "FP64", [-1, 1]), ("label", "BYTES", [-1, 1])]
    return [("prediction", "FP64", [-1, 1])]


async def _infer(serving: Serving, request: Request) -> Response:
    started = time.perf_counter()
    served = await _loaded(serving, request)
    body = await read_body(request, serving)
    document, binary = _split(body, request.headers.get(HEADER_LENGTH), serving.settings.api_max_json_bytes)
    tensors = _tensors(document, binary, served)
    rows = _rows(served, tensors, serving.settings.api_max_rows)
    if served.schema.images:
        uploads.check_pixels(rows, served, serving.settings.api_max_bytes)
    part = await serving.batcher.predict(served, rows)
    failed = np.flatnonzero(~part.good).tolist()
    if failed:
        raise ApiError(
            400,
            "bad_request",
            f"{len(failed)} of {len(rows)} rows cannot be predicted; row {failed[0]}: {part.errors[failed[0]]}",
        )
    answers = answer_rows(served, part) if serving.recorder is not None else []  # only what the history keeps
    recorded = record_rows(serving, served, request, rows, answers, started)
    counted(request, served, len(rows), "Open Inference Protocol")
    answer: dict[str, Any] = {"model_name": served.version.model_name, "model_version": served.label}
    if isinstance(document.get("id"), str):
        answer["id"] = document["id"]
    headers = {"X-Model-Version": served.label, "X-Model-Name": served.version.model_name}
    if recorded:
        headers["X-Prediction-Id"] = recorded
    return _answer(answer, _outputs(served, part, document), headers)


def _split(body: bytes, header_length: str | None, json_limit: int) -> tuple[dict[str, Any], bytes]:
    """The request's JSON document and the binary tensor data after it (Triton's binary extension)."""
    size = len(body)
    if header_length is not None:
        if not header_length.isdigit() or int(header_length) > len(body):
            raise ApiError(
                400,
                "bad_request",
                f"Inference-Header-Content-Length {header_length[:20]!r} is not a length within the body",
            )
        size = int(header_length)
    if size > json_limit:
        raise ApiError(
            413, "too_large", f"the JSON header is {size:,} bytes, over the {json_limit:,} limit (API_MAX_JSON_BYTES)"
        )
    try:
        document = json.loads(body[:size])
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad(f"the request is not JSON: {str(exc)[:200]}") from None
    if not isinstance(document, dict) or not isinstance(document.get("inputs"), list):
        raise bad('the request must be a JSON object with an "inputs" list of tensors')
    return document, body[size:]


def _tensors(document: dict[str, Any], binary: bytes, served: Served) -> dict[str, np.ndarray | list]:
    """Each input tensor by name: a numpy array (numbers) or a flat list of bytes (BYTES)."""
    expected = {name: (datatype, shape) for name, datatype, shape in inputs_of(served)}
    takes = "; ".join(f"{n} ({t} {s})" for n, (t, s) in expected.items())
    found: dict[str, np.ndarray | list] = {}
    offset = 0
    for tensor in document["inputs"]:
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise ApiError(
                400,
                "bad_request",
                f'each input must be an object with "name", "shape", "datatype"; this model takes {takes}',
            )
        name, datatype, shape = tensor["name"], tensor.get("datatype"), tensor.get("shape")
        if name not in expected:
            raise bad(f"unexpected input {name[:64]!r}; this model takes {takes}")
        if not isinstance(shape, list) or not shape or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise ApiError(
                400, "bad_request", f"input {name}: shape must be a list of non-negative integers such as [2, 1]"
            )
        count = int(np.prod(shape))
        size = (tensor.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise ApiError(
                    400, "bad_request", f"input {name}: binary_data_size {size!r} is past the end of the body"
                )
            raw, offset = binary[offset : offset + size], offset + size
        elif "data" in tensor:
            raw = None
        else:
            raise ApiError(
                400, "bad_request", f'input {name}: give "data", or binary data with parameters.binary_data_size'
            )
        found[name] = _decode(name, datatype, shape, count, tensor.get("data"), raw, expected[name])
    missing = [name for name in expected if name not in found]
    if missing:
        raise bad(f"missing input {', '.join(missing)}; this model takes {takes}")
    return found


def _decode(name: str, datatype: Any, shape: list[int], count: int, data: Any, raw: bytes | None, want) -> Any:
    wanted_type, wanted_shape = want
    if datatype == "BYTES":
        if wanted_type != "BYTES":
            raise bad(f"input {name} takes {wanted_type} numbers, not BYTES")
        items = _bytes_items(name, raw, count) if raw is not None else _json_bytes(name, data, count)
        return items
    if datatype not in NUMPY:
        raise ApiError(
            400,
            "bad_request",
            f"input {name}: datatype {str(datatype)[:20]!r} is not one of {', '.join([*NUMPY, 'BYTES'])}",
        )
    if wanted_type == "BYTES":
        raise ApiError(
            400, "bad_request", f"input {name} takes BYTES (a category, a text or an image's bytes), not {datatype}"
        )
    try:
        if raw is not None:
            values = np.frombuffer(raw, dtype=np.dtype(NUMPY[datatype]).newbyteorder("<"))
        else:
            values = np.asarray(data, dtype=np.float64).reshape(-1)
    except (ValueError, TypeError):
        raise bad(f"input {name}: the data are not {datatype} numbers") from None
    if values.size != count:
        raise ApiError(
            400, "bad_request", f"input {name}: shape {shape} holds {count} values but {values.size} were sent"
        )
    width = wanted_shape[1]
    if name == MATRIX_INPUT and (len(shape) != 2 or shape[1] != width):
        raise ApiError(
            400,
            "bad_request",
            f"input {name} has shape {shape}; this model takes [-1, {width}] (rows of {width} features)",
        )
    if name != MATRIX_INPUT and len(shape) > 1 and int(np.prod(shape[1:])) != 1:
        raise ApiError(
            400, "bad_request", f"input {name} has shape {shape}; this model takes [-1, 1] (one value per row)"
        )
    return values.astype(np.float64)


def _bytes_items(name: str, raw: bytes, count: int) -> list[bytes]:
    """Triton's binary BYTES: each element a 4-byte little-endian length, then its bytes."""
    items, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise bad(f"input {name}: the binary BYTES data end inside an element's length")
        (length,) = struct.unpack_from("<I", raw, offset)
        if offset + 4 + length > len(raw):
            raise bad(f"input {name}: an element of {length:,} bytes goes past the data")
        items.append(raw[offset + 4 : offset + 4 + length])
        offset += 4 + length
    if len(items) != count:
        raise bad(f"input {name}: the shape holds {count} elements but {len(items)} were sent")
    return items


def _json_bytes(name: str, data: Any, count: int) -> list[str]:
    """BYTES elements written as JSON strings (an image's as base64 text), kept as text."""
    flat = _flatten(data)
    if len(flat) != count or not all(isinstance(v, str) for v in flat):
        raise bad(f"input {name}: BYTES data must be {count} strings")
    return flat


def _flatten(data: Any) -> list:
    if isinstance(data, list):
        return [item for value in data for item in _flatten(value)]
    return [data]


def _rows(served: Served, tensors: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    """One row per batch element, keyed by the schema's feature names."""
    features = served.schema.features
    if MATRIX_INPUT in tensors and len(inputs_of(served)) == 1 and inputs_of(served)[0][0] == MATRIX_INPUT:
        matrix = tensors[MATRIX_INPUT].reshape(-1, len(features))
        _check_rows(len(matrix), limit)
        names = served.schema.names
        return [dict(zip(names, row, strict=True)) for row in matrix.tolist()]
    counts = {name: len(values) for name, values in tensors.items()}
    if len(set(counts.values())) != 1:
        raise bad(f"the inputs hold different numbers of rows: {counts}")
    count = next(iter(counts.values()))
    _check_rows(count, limit)
    columns = {}
    for feature in features:
        values = tensors[feature.name]
        if feature.type == "image":  # binary data: the file's bytes; JSON: base64 text of them
            columns[feature.name] = [
                ImageFile("", v) if isinstance(v, bytes) else images.from_b64({"b64": v}) for v in values
            ]
        elif feature.type == "number":
            columns[feature.name] = values.tolist()
        else:
            columns[feature.name] = [v.decode("utf-8", errors="replace") if isinstance(v, bytes) else v for v in values]
    return [{name: column[i] for name, column in columns.items()} for i in range(count)]


def _check_rows(count: int, limit: int) -> None:
    if count > limit:
        raise ApiError(413, "too_many_rows", f"{count:,} rows are over the {limit:,} limit (API_MAX_ROWS)")


def _outputs(served: Served, part, document: dict[str, Any]) -> list[tuple[str, str, list[int], Any, bool]]:
    """(name, datatype, shape, values, binary) of each output asked for (all when none is named)."""
    values = np.asarray(raw_outputs(served, part), dtype=np.float64)
    rows = len(values)
    output = served.schema.output
    found: dict[str, tuple[str, list[int], Any]] = {}
    if output.type == "classification":
        found["probabilities"] = ("FP64", [rows, len(output.labels)], values)
        found["label"] = ("BYTES", [rows, 1], [output.labels[int(i)] for i in np.argmax(values, axis=1)])
    elif output.type == "binary":
        found["probability"] = ("FP64", [rows, 1], values)
        labels = [output.labels[1] if p >= output.threshold else output.labels[0] for p in values[:, 0]]
        found["label"] = ("BYTES", [rows, 1], labels)
    else:
        found["prediction"] = ("FP64", [rows, 1], values)
    everything_binary = bool((document.get("parameters") or {}).get("binary_data_output"))
    asked = document.get("outputs")
    if not isinstance(asked, list) or not asked:
        return [(n, t, s, v, everything_binary) for n, (t, s, v) in found.items()]
    chosen = []
    for item in asked:
        name = item.get("name") if isinstance(item, dict) else None
        if name not in found:
            raise ApiError(
                400, "bad_request", f"unknown output {str(name)[:64]!r}; this model gives {', '.join(found)}"
            )
        binary = bool((item.get("parameters") or {}).get("binary_data", everything_binary))
        chosen.append((name, *found[name], binary))
    return chosen


def _answer(answer: dict[str, Any], outputs: list, headers: dict[str, str]) -> Response:
    """JSON tensors, or (when any output is asked as binary) the JSON header followed by the binary data."""
    chunks, listed = [], []
    for name, datatype, shape, values, binary in outputs:
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": shape}
        if binary:
            data = (
                b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)
                if datatype == "BYTES"
                else np.ascontiguousarray(values, dtype="<f8").tobytes()
            )
            entry["parameters"] = {"binary_data_size": len(data)}
            chunks.append(data)
        else:
            entry["data"] = list(values) if datatype == "BYTES" else np.asarray(values).reshape(-1).tolist()
        listed.append(entry)
    answer["outputs"] = listed
    header = json.dumps(answer).encode()
    if not chunks:
        return Response(header, media_type="application/json", headers=headers)
    headers = {**headers, "Inference-Header-Content-Length": str(len(header))}
    return Response(header + b"".join(chunks), media_type="application/octet-stream", headers=headers)
