"""A REST API over a trained VQA run (``mumo serve RUN``; docs/serve.md): answers with their uncertainty, explanation
maps, health, readiness and metrics, with concurrent answers micro-batched through one model worker.

- ``POST /v1/predict``: an image (multipart upload, or base64 in JSON) and a question -> the JSON of
  ``mumo predict --json``;
- ``POST /v1/explain``: the same inputs and a ``method`` -> the overlay PNG of ``mumo explain --out`` or the JSON
  of ``mumo explain --json`` (``format``);
- ``GET /healthz`` (the process answers), ``GET /readyz`` (the model is loaded; 503 before), ``GET /metrics``
  (Prometheus text), ``GET /openapi.json``.

Request handlers never run torch: they read and check the request (decoding the image in a thread of the
server's pool) and wait on a future; one worker thread (:class:`~mumo.serve.batching.MicroBatcher`) owns the
model, with ``torch.set_num_threads(threads)``, and answers answers of equal options together with
:meth:`~mumo.tasks.vqa.predictor.VQAPredictor.predict_many`. Every bad request gets a 4xx with
``{"error": ..., "field": ...}``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import logging
import math
import tempfile
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable, Hashable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from PIL import Image, UnidentifiedImageError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mumo.data.images import load_image
from mumo.data.text import check_question
from mumo.errors import CheckpointError, ImageError, MumoError, QuestionError
from mumo.serve.batching import MicroBatcher, NotReady, QueueFull
from mumo.serve.predict import ABSTAIN_SCORES, VQAPredictor, load
from mumo.types import strict_json

log = logging.getLogger("mumo.serve")

EXPLAIN_METHOD_NAMES = ("attention", "gradcam", "ucam")
EXPLAIN_FORMATS = ("png", "array")
GRADCAM_TARGET_NAMES = ("logit", "log-prob")
UCAM_VARIANT_NAMES = ("predictive", "loss", "aleatoric")
MC_SCOPES = ("all", "attflat")
ENDPOINTS = ("/v1/predict", "/v1/explain", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)  # seconds
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)  # jobs a batch


@dataclass(frozen=True)
class Limits:
    """What one request may ask; larger or other requests get a 4xx naming the field."""

    max_body_bytes: int = 8 * 2**20  # the whole request body (413 above)
    max_pixels: int = 4096 * 4096  # width x height of the decoded image (413 above)
    max_question_chars: int = 500  # characters of the question (the library's own limit is 1000)
    max_mc_samples: int = 100  # T of mc_samples (and of U-CAM's samples)
    max_top_k: int = 50  # top_k in 1 .. this
    max_queue: int = 1024  # requests waiting for the model (503 above: try later)


class RequestError(Exception):
    """A request the server refuses: HTTP ``status``, a message, the ``field`` at fault (None: the request)."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


def error_response(status: int, message: str, field: str | None = None, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message, "field": field}, status_code=status, headers=headers or None)


def strict_json_response(value: Any, status: int = 200) -> Response:
    """``value`` as the CLI's ``--json`` writes it (``json.dumps``, non-finite floats as null): ``/v1/predict``'s
    body is byte for byte the line ``mumo predict --json`` prints."""
    return Response(strict_json(value), status, media_type="application/json")


# reading requests: fields from JSON or multipart, each checked and named when refused


@dataclass(frozen=True)
class PredictOptions:
    """The options of one ``/v1/predict`` request: requests with equal options share a batch."""

    top_k: int = 3
    mc_samples: int | None = None
    mc_scope: str = "all"
    abstain: float | None = None
    abstain_on: str = "predictive_entropy"
    ood_check: bool = True


@dataclass(frozen=True)
class ExplainRequestOptions:
    method: str = "gradcam"
    format: str = "png"
    target: str = "logit"
    ucam_variant: str = "predictive"
    samples: int = 20


PREDICT_FIELDS = ("image", "question", *PredictOptions.__dataclass_fields__)
EXPLAIN_FIELDS = ("image", "question", *ExplainRequestOptions.__dataclass_fields__)


@dataclass
class Fields:
    """A request's fields: ``values`` as JSON gave them or as multipart text; ``image`` the uploaded bytes."""

    values: dict[str, Any]
    image: bytes
    form: bool  # multipart: every value is text to parse


async def read_fields(request: Request, allowed: Sequence[str], limits: Limits) -> Fields:
    """The image bytes and the other fields of a JSON or multipart request; RequestError for anything else."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestError(400, f"the body is not valid JSON: {exc}", "body") from None
        if not isinstance(body, dict):
            raise RequestError(400, f"the body must be a JSON object, not {type(body).__name__}", "body")
        _refuse_unknown(body, allowed)
        raw = body.pop("image", None)
        if raw is None:
            raise RequestError(422, "image is missing: give the image file's bytes in base64", "image")
        if not isinstance(raw, str):
            raise RequestError(422, f"image must be a base64 string, not {type(raw).__name__}", "image")
        if raw.startswith("data:") and "," in raw:  # a data URL: data:image/png;base64,....
            raw = raw.split(",", 1)[1]
        try:
            image = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(400, "image is not valid base64", "image") from None
        return Fields(body, image, form=False)
    if kind == "multipart/form-data":
        try:
            form = await request.form(max_files=4, max_fields=4 * len(allowed), max_part_size=limits.max_body_bytes)
        except RequestError:
            raise
        except StarletteHTTPException as exc:
            raise RequestError(400, f"unreadable multipart body: {exc.detail}", "body") from None
        except Exception as exc:  # the parser's own errors (a malformed part)
            raise RequestError(400, f"unreadable multipart body: {exc}", "body") from None
        try:
            values: dict[str, Any] = {}
            for name in form:
                items = form.getlist(name)
                if len(items) > 1:
                    raise RequestError(422, f"{name} is given {len(items)} times; give it once", name)
                values[name] = items[0]
            _refuse_unknown(values, allowed)
            upload = values.pop("image", None)
            if upload is None:
                raise RequestError(422, "image is missing: upload the image file as the form field 'image'", "image")
            if not isinstance(upload, UploadFile):
                raise RequestError(422, "image must be a file upload (or send JSON with base64)", "image")
            image = await upload.read()
            for name, value in values.items():
                if isinstance(value, UploadFile):
                    raise RequestError(422, f"{name} must be a text field, not a file", name)
            return Fields(values, image, form=True)
        finally:
            await form.close()
    raise RequestError(
        415, f"content type {kind or '(none)'!r} is not served: send multipart/form-data or application/json",
        "content-type",
    )  # fmt: skip


def _refuse_unknown(values: Mapping[str, Any], allowed: Sequence[str]) -> None:
    for name in values:
        if name not in allowed:
            raise RequestError(422, f"unknown field {name!r}; the fields are: {', '.join(allowed)}", name)


def decode_image(data: bytes, limits: Limits, size: int) -> np.ndarray:
    """The uploaded image as the model's (size, size, 3) uint8 input, as ``mumo predict --image FILE`` reads it."""
    if not data:
        raise RequestError(422, "image is empty (0 bytes)", "image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                w, h = img.size
                if w * h > limits.max_pixels:
                    message = f"image is {w}x{h} pixels, over the limit of {limits.max_pixels:,}"
                    raise RequestError(413, message, "image")
                img.load()
                return load_image(img, size=size)  # (size, size, 3) uint8, any mode made RGB
    except RequestError:
        raise
    except UnidentifiedImageError:
        raise RequestError(400, "image is not an image file (format not recognised)", "image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise RequestError(413, "image refused as a possible decompression bomb", "image") from None
    except ImageError as exc:
        raise RequestError(400, f"image: {exc}", "image") from None
    except Exception as exc:  # PIL's decoders raise many kinds for corrupt data
        raise RequestError(400, f"cannot read image (truncated or corrupt?): {exc}", "image") from None


def parse_question(fields: Fields, limits: Limits) -> str:
    question = fields.values.pop("question", None)
    if question is None:
        raise RequestError(422, "question is missing", "question")
    if not isinstance(question, str):
        raise RequestError(422, f"question must be text, not {type(question).__name__}", "question")
    if len(question) > limits.max_question_chars:
        raise RequestError(
            422, f"question has {len(question)} characters; the limit is {limits.max_question_chars}", "question"
        )
    try:
        return check_question(question)
    except QuestionError as exc:
        raise RequestError(422, str(exc), "question") from None


def _absent(fields: Fields, value: Any) -> bool:
    """Not given: missing, JSON null, or in a form an empty field or the word null."""
    return value is None or (fields.form and value.strip().lower() in ("", "null"))


def _int(fields: Fields, name: str, default: int | None, lo: int, hi: int) -> int | None:
    value = fields.values.get(name)
    if _absent(fields, value):
        return default
    if fields.form:
        try:
            value = int(value.strip())
        except ValueError:
            raise RequestError(422, f"{name} must be an integer, not {value!r}", name) from None
    elif isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(422, f"{name} must be an integer, not {json.dumps(value)}", name)
    if not lo <= value <= hi:
        raise RequestError(422, f"{name} must be in {lo} .. {hi}, not {value}", name)
    return value


def _float(fields: Fields, name: str) -> float | None:
    value = fields.values.get(name)
    if _absent(fields, value):
        return None
    if fields.form:
        try:
            value = float(value.strip())
        except ValueError:
            raise RequestError(422, f"{name} must be a number, not {value!r}", name) from None
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(422, f"{name} must be a number, not {json.dumps(value)}", name)
    if not math.isfinite(value):
        raise RequestError(422, f"{name} must be a finite number, not {value}", name)
    return float(value)


def _bool(fields: Fields, name: str, default: bool) -> bool:
    value = fields.values.get(name)
    if _absent(fields, value):
        return default
    if fields.form:
        words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
        if value.strip().lower() not in words:
            raise RequestError(422, f"{name} must be true or false, not {value!r}", name)
        return words[value.strip().lower()]
    if not isinstance(value, bool):
        raise RequestError(422, f"{name} must be true or false, not {json.dumps(value)}", name)
    return value


def _choice(fields: Fields, name: str, default: str, choices: Sequence[str]) -> str:
    value = fields.values.get(name)
    if _absent(fields, value):
        return default
    if value not in choices:
        raise RequestError(422, f"{name} must be one of {', '.join(choices)}, not {json.dumps(value)}", name)
    return value


def parse_predict_options(fields: Fields, limits: Limits) -> PredictOptions:
    return PredictOptions(
        top_k=_int(fields, "top_k", 3, 1, limits.max_top_k),
        mc_samples=_int(fields, "mc_samples", None, 1, limits.max_mc_samples),
        mc_scope=_choice(fields, "mc_scope", "all", MC_SCOPES),
        abstain=_float(fields, "abstain"),
        abstain_on=_choice(fields, "abstain_on", "predictive_entropy", ABSTAIN_SCORES),
        ood_check=_bool(fields, "ood_check", True),
    )


def parse_explain_options(fields: Fields, limits: Limits) -> ExplainRequestOptions:
    return ExplainRequestOptions(
        method=_choice(fields, "method", "gradcam", EXPLAIN_METHOD_NAMES),
        format=_choice(fields, "format", "png", EXPLAIN_FORMATS),
        target=_choice(fields, "target", "logit", GRADCAM_TARGET_NAMES),
        ucam_variant=_choice(fields, "ucam_variant", "predictive", UCAM_VARIANT_NAMES),
        samples=_int(fields, "samples", 20, 1, limits.max_mc_samples),
    )


# the model worker: everything that runs torch


def _setup(run: Path, device: str, threads: int) -> VQAPredictor:
    import torch

    torch.set_num_threads(threads)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predictor = load(run, device=device)
    for w in caught:
        log.warning("%s", w.message)
    if not isinstance(predictor, VQAPredictor):
        raise CheckpointError(f"{run} holds a question generator, not a VQA model: `mumo serve` answers questions")
    return predictor


def _run_batch(predictor: VQAPredictor, key: Hashable, payloads: Sequence[Any]) -> list[Any]:
    kind, options = key
    if kind == "explain":
        return [_explain_or_error(predictor, options, *p) for p in payloads]
    opts = asdict(options)
    images, questions = [p[0] for p in payloads], [p[1] for p in payloads]
    try:
        return [p.to_dict() for p in predictor.predict_many(images, questions, **opts)]
    except MumoError as exc:
        if len(payloads) == 1:
            return [exc]
    results: list[Any] = []  # one item's error must not fail the others: each alone
    for image, question in zip(images, questions, strict=True):
        try:
            results.append(predictor.predict(image, question, **opts).to_dict())
        except MumoError as exc:
            results.append(exc)
    return results


def _explain_or_error(predictor: VQAPredictor, options: ExplainRequestOptions, image: Any, question: str) -> Any:
    try:
        return explain(predictor, image, question, options)
    except MumoError as exc:
        return exc


def explain(predictor: VQAPredictor, image: Any, question: str, options: ExplainRequestOptions) -> dict | bytes:
    """What ``mumo explain RUN --image --question --method`` computes, with the loaded model: the JSON of its
    ``--json`` (``format="array"``) or the PNG of its ``--out`` (``format="png"``)."""
    from mumo.tasks.vqa.explain import ExplainOptions, explain_example

    opts = ExplainOptions(ucam_variant=options.ucam_variant, samples=options.samples, target=options.target)
    if options.format != "png":
        return explain_example(None, image, question, options.method, opts=opts, predictor=predictor)
    with tempfile.TemporaryDirectory(prefix="mumo-serve-") as tmp:
        out = Path(tmp) / "overlay.png"
        explain_example(None, image, question, options.method, opts=opts, out=out, predictor=predictor)
        return out.read_bytes()


# metrics, in Prometheus' text format


class Histogram:
    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets, self.counts, self.sum, self.count = tuple(buckets), [0] * len(buckets), 0.0, 0

    def observe(self, value: float) -> None:
        self.sum += value
        self.count += 1
        for i, upper in enumerate(self.buckets):
            if value <= upper:
                self.counts[i] += 1

    def lines(self, name: str, labels: str) -> list[str]:
        sep = "," if labels else ""
        out = [f'{name}_bucket{{{labels}{sep}le="{b:g}"}} {c}' for b, c in zip(self.buckets, self.counts, strict=True)]
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.count}')
        out += [f"{name}_sum{{{labels}}} {self.sum:.6f}", f"{name}_count{{{labels}}} {self.count}"]
        return out


class Metrics:
    """Request counts by endpoint and status, request latency and batch-size histograms (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = {}
        self.latency: dict[str, Histogram] = {}
        self.batch_size: dict[str, Histogram] = {}
        self.batch_seconds: dict[str, Histogram] = {}

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[endpoint, status] = self.requests.get((endpoint, status), 0) + 1
            self.latency.setdefault(endpoint, Histogram(LATENCY_BUCKETS)).observe(seconds)

    def observe_batch(self, size: int, key: Hashable, seconds: float) -> None:
        kind = key[0] if isinstance(key, tuple) else str(key)
        with self._lock:
            self.batch_size.setdefault(kind, Histogram(BATCH_BUCKETS)).observe(size)
            self.batch_seconds.setdefault(kind, Histogram(LATENCY_BUCKETS)).observe(seconds)

    def render(self, gauges: Mapping[str, tuple[str, float]]) -> str:
        with self._lock:
            lines = ["# HELP mumo_requests_total HTTP requests answered, by endpoint and status.",
                     "# TYPE mumo_requests_total counter"]  # fmt: skip
            for (endpoint, status), n in sorted(self.requests.items()):
                lines.append(f'mumo_requests_total{{endpoint="{endpoint}",status="{status}"}} {n}')
            for name, helptext, hists, label in (
                ("mumo_request_duration_seconds", "Seconds from request to response.", self.latency, "endpoint"),
                ("mumo_batch_size", "Requests run through the model together.", self.batch_size, "kind"),
                ("mumo_batch_duration_seconds", "Seconds the model worker took per batch.", self.batch_seconds,
                 "kind"),
            ):  # fmt: skip
                lines += [f"# HELP {name} {helptext}", f"# TYPE {name} histogram"]
                for value, hist in sorted(hists.items()):
                    lines += hist.lines(name, f'{label}="{value}"')
        for name, (helptext, value) in gauges.items():
            lines += [f"# HELP {name} {helptext}", f"# TYPE {name} gauge", f"{name} {value:g}"]
        return "\n".join(lines) + "\n"


class _MetricsAndLimits:
    """ASGI middleware: counts and times every request, and refuses bodies over the limit (413) without reading
    more than the limit."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, max_body_bytes: int) -> None:
        self.app, self.metrics, self.max_body_bytes = app, metrics, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500
        endpoint = scope["path"] if scope["path"] in ENDPOINTS else "other"

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            length = dict(scope["headers"]).get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
                too_big = length.isdigit()
                response = error_response(
                    413 if too_big else 400,
                    f"the body is {int(length):,} bytes, over the limit of {self.max_body_bytes:,}"
                    if too_big else "the content-length header is not a number",
                    "body",
                )  # fmt: skip
                await response(scope, receive, send_status)
                return
            received = 0

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body_bytes:
                        raise RequestError(413, f"the body is over the limit of {self.max_body_bytes:,} bytes", "body")
                return message

            await self.app(scope, limited_receive, send_status)
        finally:
            self.metrics.observe_request(endpoint, status, time.perf_counter() - start)


# the app


def _schema(fields: dict[str, dict], image: dict) -> dict:
    return {"type": "object", "properties": {"image": image, **fields}, "required": ["image", "question"],
            "additionalProperties": False}  # fmt: skip


def _request_body(limits: Limits, options: dict[str, dict]) -> dict:
    question = {"type": "string", "minLength": 1, "maxLength": limits.max_question_chars}
    fields = {"question": question, **options}
    binary = {"type": "string", "format": "binary", "description": "the image file (PNG, JPEG, ...)"}
    b64 = {"type": "string", "contentEncoding": "base64", "description": "the image file's bytes in base64"}
    return {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": _schema(fields, binary)},
            "application/json": {"schema": _schema(fields, b64)},
        },
    }


def _options_schema(limits: Limits) -> tuple[dict, dict]:
    def nullable(schema: dict) -> dict:
        return {"anyOf": [schema, {"type": "null"}]}

    predict = {
        "top_k": {"type": "integer", "minimum": 1, "maximum": limits.max_top_k, "default": 3},
        "mc_samples": nullable({"type": "integer", "minimum": 1, "maximum": limits.max_mc_samples}),
        "mc_scope": {"enum": list(MC_SCOPES), "default": "all"},
        "abstain": nullable({"type": "number"}),
        "abstain_on": {"enum": list(ABSTAIN_SCORES), "default": "predictive_entropy"},
        "ood_check": {"type": "boolean", "default": True},
    }
    explain_options = {
        "method": {"enum": list(EXPLAIN_METHOD_NAMES), "default": "gradcam"},
        "format": {"enum": list(EXPLAIN_FORMATS), "default": "png"},
        "target": {"enum": list(GRADCAM_TARGET_NAMES), "default": "logit"},
        "ucam_variant": {"enum": list(UCAM_VARIANT_NAMES), "default": "predictive"},
        "samples": {"type": "integer", "minimum": 1, "maximum": limits.max_mc_samples, "default": 20},
    }
    return predict, explain_options


ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "field": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
    "required": ["error", "field"],
}
ERRORS = {
    str(status): {"description": text, "content": {"application/json": {"schema": ERROR_SCHEMA}}}
    for status, text in (
        (400, "an unreadable body or image"), (413, "a body or image over the limits"),
        (415, "a content type other than multipart/form-data or application/json"),
        (422, "a missing, unknown or out-of-range field, or a request the model refuses"),
        (503, "the model is not loaded yet, or too many requests are waiting"),
    )
}  # fmt: skip


def create_app(
    run: str | Path,
    *,
    max_batch: int = 8,
    max_delay_ms: float = 10.0,
    threads: int = 2,
    limits: Limits | None = None,
    device: str = "auto",
    on_load_error: Callable[[BaseException], None] | None = None,
) -> FastAPI:
    """The REST API over a VQA run; the model loads in the worker thread when the app starts (``/readyz`` says
    503 until it has).

    Args:
        run: The run directory.
        max_batch: At most this many ``/v1/predict`` requests run through the model together.
        max_delay_ms: How long a batch waits for more requests after its first one arrived.
        threads: ``torch.set_num_threads`` of the one model worker.
        limits: What one request may ask (:class:`Limits`).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        on_load_error: Called (in the worker thread) when the model fails to load.
    """
    run, limits = Path(run), limits or Limits()
    if threads < 1:
        raise MumoError(f"threads must be >= 1, not {threads}")
    if max_batch < 1 or max_delay_ms < 0:
        raise MumoError(f"max_batch must be >= 1 and max_delay_ms >= 0, not {max_batch} and {max_delay_ms}")
    metrics = Metrics()

    def setup() -> VQAPredictor:
        try:
            return _setup(run, device, threads)
        except BaseException as exc:
            if on_load_error is not None:
                on_load_error(exc)
            raise

    batcher = MicroBatcher(
        setup, _run_batch, max_batch=max_batch, max_delay=max_delay_ms / 1000, max_queue=limits.max_queue,
        on_batch=metrics.observe_batch,
    )  # fmt: skip

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        try:
            yield
        finally:
            await run_in_threadpool(batcher.stop)

    app = FastAPI(
        title="mumo", summary="Answers about images with their uncertainty, from a trained VQA run.",
        lifespan=lifespan,
    )  # fmt: skip
    app.state.batcher, app.state.metrics, app.state.limits, app.state.run = batcher, metrics, limits, run
    app.add_middleware(_MetricsAndLimits, metrics=metrics, max_body_bytes=limits.max_body_bytes)

    @app.exception_handler(RequestError)
    async def _request_error(request: Request, exc: RequestError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.field)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), None)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"msg": "invalid request", "loc": ()}
        return error_response(422, str(first.get("msg")), ".".join(str(x) for x in first.get("loc", ())) or None)

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s: %r", request.url.path, exc)
        return error_response(500, "internal server error", None)

    async def ask(key: Hashable, payload: Any, batchable: bool) -> Any:
        """The worker's answer to one job; RequestError for what the library refuses."""
        try:
            future = batcher.submit(key, payload, batchable=batchable)
        except NotReady as exc:
            raise RequestError(503, str(exc)) from None
        except QueueFull as exc:
            raise RequestError(503, f"server busy: {exc}; try again later") from None
        try:
            return await asyncio.wrap_future(future)
        except NotReady as exc:
            raise RequestError(503, str(exc)) from None
        except MumoError as exc:
            field = "question" if isinstance(exc, QuestionError) else "image" if isinstance(exc, ImageError) else None
            raise RequestError(422, str(exc), field) from None

    def image_size() -> int:
        if not batcher.ready.is_set():
            raise RequestError(503, batcher.not_ready_reason())
        return batcher.state.cfg.data.image_size

    predict_schema, explain_schema = _options_schema(limits)

    @app.post(
        "/v1/predict",
        summary="Answer a question about an image, with its uncertainty",
        description="The image as a multipart upload (field `image`) or base64 in a JSON object; the answer is "
        "the JSON of `mumo predict --json`. Requests with equal options are batched.",
        openapi_extra={"requestBody": _request_body(limits, predict_schema)},
        responses={200: {"description": "the prediction (as `mumo predict --json`)"}, **ERRORS},
    )
    async def predict(request: Request) -> Response:
        fields = await read_fields(request, PREDICT_FIELDS, limits)
        question = parse_question(fields, limits)
        options = parse_predict_options(fields, limits)
        pixels = await run_in_threadpool(decode_image, fields.image, limits, image_size())
        return strict_json_response(await ask(("predict", options), (pixels, question), batchable=True))

    @app.post(
        "/v1/explain",
        summary="Where the model looked: an explanation map of its answer",
        description="`format=png`: the overlay PNG of `mumo explain --out`; `format=array`: the JSON of "
        "`mumo explain --json` (`map`: one value per grid cell, row-major; `grid`: [rows, cols]).",
        openapi_extra={"requestBody": _request_body(limits, explain_schema)},
        responses={
            200: {"description": "the map", "content": {"image/png": {}, "application/json": {}}},
            **ERRORS,
        },
    )
    async def explain_endpoint(request: Request) -> Response:
        fields = await read_fields(request, EXPLAIN_FIELDS, limits)
        question = parse_question(fields, limits)
        options = parse_explain_options(fields, limits)
        pixels = await run_in_threadpool(decode_image, fields.image, limits, image_size())
        result = await ask(("explain", options), (pixels, question), batchable=False)
        if isinstance(result, bytes):
            return Response(result, media_type="image/png")
        return strict_json_response(result)

    @app.get("/healthz", summary="The process answers")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", summary="The model is loaded (503 before)", responses={503: {"description": "not yet"}})
    async def readyz() -> JSONResponse:
        if batcher.ready.is_set():
            return JSONResponse({"ready": True, "run": str(run)})
        return JSONResponse({"ready": False, "error": batcher.not_ready_reason()}, status_code=503)

    @app.get("/metrics", summary="Prometheus metrics (text format 0.0.4)")
    async def metrics_endpoint() -> Response:
        gauges = {
            "mumo_model_ready": ("1 once the model is loaded.", float(batcher.ready.is_set())),
            "mumo_requests_waiting": ("Requests waiting for the model worker.", float(batcher.waiting)),
        }
        return Response(metrics.render(gauges), media_type="text/plain; version=0.0.4; charset=utf-8")

    return app
