"""``mumo serve``: the REST API over a tiny trained run, in process (TestClient) and as a real server."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import easy_vqa
import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from mumo.cli._json import strict_json
from mumo.serve.predict import load
from mumo.serve.server import Limits, create_app
from tests._close import assert_close
from tests.reliability._cli import assert_one_line_error, mumo

LIMITS = Limits(max_body_bytes=200_000, max_pixels=300 * 300, max_question_chars=200, max_mc_samples=100, max_top_k=20)
QUESTION = "what shape is in the image?"


def wait_ready(client: TestClient | httpx.Client, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "the model did not load"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def client(tiny_run):
    """An app that answers each request at once (no batching delay), with small limits."""
    app = create_app(tiny_run, max_batch=8, max_delay_ms=0, threads=1, device="cpu", limits=LIMITS)
    with TestClient(app) as c:
        wait_ready(c)
        yield c


@pytest.fixture(scope="module")
def predictor(tiny_run):
    return load(tiny_run, device="cpu")


@pytest.fixture(scope="module")
def examples() -> list[tuple[str, str]]:
    """Eight different easy-VQA test images, each with its own question."""
    questions, _, image_ids = easy_vqa.get_test_questions()
    paths = easy_vqa.get_test_image_paths()
    return [(paths[image_ids[i]], questions[i]) for i in range(0, 8 * 37, 37)]


def png(size: tuple[int, int] = (64, 64), color: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def upload(path: str | Path, question: str = QUESTION, **options: object) -> dict:
    """Multipart keyword arguments of a request: the image file and the text fields."""
    return {"files": {"image": ("image.png", Path(path).read_bytes(), "image/png")},
            "data": {"question": question, **{k: str(v) for k, v in options.items()}}}  # fmt: skip


def as_json(path: str | Path, question: str = QUESTION, **options: object) -> dict:
    return {"json": {"image": base64.b64encode(Path(path).read_bytes()).decode(), "question": question, **options}}


def batch_sizes(metrics_text: str) -> tuple[int, int]:
    """(batches of one, all batches) of /v1/predict from the /metrics text."""
    ones = re.search(r'^mumo_batch_size_bucket\{kind="predict",le="1"\} (\d+)$', metrics_text, re.M)
    count = re.search(r'^mumo_batch_size_count\{kind="predict"\} (\d+)$', metrics_text, re.M)
    return int(ones.group(1)) if ones else 0, int(count.group(1)) if count else 0


# answers


def test_predict_by_upload_and_by_base64_answers_as_mumo_predict_json(client, predictor, shape_png):
    expected = predictor.predict(shape_png, QUESTION)
    for kwargs in (upload(shape_png), as_json(shape_png)):
        r = client.post("/v1/predict", **kwargs)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json"
        assert r.text == strict_json(expected.to_dict())  # the line `mumo predict --json` prints
    options = {"top_k": 5, "mc_samples": 4, "mc_scope": "attflat", "abstain": 0.5, "abstain_on": "expected_entropy"}
    expected = predictor.predict(shape_png, QUESTION, **options).to_dict()
    assert expected["abstained"] and len(expected["top_k"]) == 5
    assert client.post("/v1/predict", **upload(shape_png, **options)).json() == expected
    assert client.post("/v1/predict", **as_json(shape_png, **options)).json() == expected
    data_url = as_json(shape_png)
    data_url["json"]["image"] = "data:image/png;base64," + data_url["json"]["image"]
    assert client.post("/v1/predict", **data_url).status_code == 200


def test_the_ood_check_is_on_unless_turned_off(client, predictor):
    noise = Image.effect_noise((64, 64), 120).convert("RGB")
    buf = io.BytesIO()
    noise.save(buf, format="PNG")
    files = {"image": ("noise.png", buf.getvalue(), "image/png")}
    on = client.post("/v1/predict", files=files, data={"question": QUESTION}).json()
    off = client.post("/v1/predict", files=files, data={"question": QUESTION, "ood_check": "false"}).json()
    assert on == predictor.predict(noise, QUESTION).to_dict()
    assert on["out_of_distribution"]["out_of_distribution"] and on["abstained"] and on["answer"] == "don't know"
    assert not off["abstained"] and off["out_of_distribution"] == on["out_of_distribution"]


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(tiny_run, predictor, examples):
    """Eight clients at once, two kinds of options: batches of equal options, each answer that of its request."""
    app = create_app(tiny_run, max_batch=4, max_delay_ms=1000, threads=1, device="cpu")
    options = [{} if i % 2 else {"mc_samples": 3} for i in range(len(examples))]
    results: list = [None] * len(examples)
    with TestClient(app) as c:
        wait_ready(c)
        start = threading.Barrier(len(examples))

        def ask(i: int) -> None:
            start.wait()
            results[i] = c.post("/v1/predict", **upload(examples[i][0], examples[i][1], **options[i]))

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(examples))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ones, batches = batch_sizes(c.get("/metrics").text)
    for (image, question), opts, r in zip(examples, options, results, strict=True):
        assert r.status_code == 200, r.text
        assert_close(r.json(), predictor.predict(image, question, **opts).to_dict())
    assert batches < len(examples) and ones < batches, (ones, batches)  # some batch held more than one request


# bad requests: a 4xx naming the field, and the server goes on


def _bad_requests(image: bytes) -> list[tuple[str, dict, int, str | None]]:
    good = {"image": ("x.png", image, "image/png")}
    b64 = base64.b64encode(image).decode()
    truncated = image[: len(image) // 2]
    q, multipart = {"question": QUESTION}, "multipart/form-data"
    return [
        ("corrupt image", {"files": {"image": ("x.png", truncated, "image/png")}, "data": {"question": QUESTION}},
         400, "image"),
        ("not an image", {"files": {"image": ("x.txt", b"hello world", "text/plain")}, "data": {"question": QUESTION}},
         400, "image"),
        ("empty image", {"files": {"image": ("x.png", b"", "image/png")}, "data": q}, 422, "image"),
        ("too many pixels", {"files": {"image": ("x.png", png((400, 400)), "image/png")}, "data": q}, 413, "image"),
        ("no image", {"data": {"question": QUESTION}, "files": {"other": ("x", b"x", "text/plain")}}, 422, "other"),
        ("image as text", {"data": {"question": QUESTION, "image": "abc"}, "files": {"f": ("", b"", "")}}, 422, "f"),
        ("image twice", {"files": [("image", ("a.png", image, "image/png")), ("image", ("b.png", image, "image/png"))],
                         "data": {"question": QUESTION}}, 422, "image"),
        ("empty question", {"files": good, "data": {"question": "   "}}, 422, "question"),
        ("no question", {"files": good}, 422, "question"),
        ("long question", {"files": good, "data": {"question": "why " * 100}}, 422, "question"),
        ("top_k 0", {"files": good, "data": {"question": QUESTION, "top_k": "0"}}, 422, "top_k"),
        ("top_k too big", {"files": good, "data": {"question": QUESTION, "top_k": "21"}}, 422, "top_k"),
        ("top_k text", {"files": good, "data": {"question": QUESTION, "top_k": "three"}}, 422, "top_k"),
        ("mc_samples 0", {"files": good, "data": {"question": QUESTION, "mc_samples": "0"}}, 422, "mc_samples"),
        ("mc_samples over", {"files": good, "data": {"question": QUESTION, "mc_samples": "101"}}, 422, "mc_samples"),
        ("abstain nan", {"files": good, "data": {"question": QUESTION, "abstain": "nan"}}, 422, "abstain"),
        ("abstain_on", {"files": good, "data": {"question": QUESTION, "abstain_on": "luck"}}, 422, "abstain_on"),
        ("mc_scope", {"files": good, "data": {"question": QUESTION, "mc_scope": "some"}}, 422, "mc_scope"),
        ("ood_check", {"files": good, "data": {"question": QUESTION, "ood_check": "maybe"}}, 422, "ood_check"),
        ("unknown field", {"files": good, "data": {"question": QUESTION, "topk": "3"}}, 422, "topk"),
        ("json bad base64", {"json": {"image": "%%%", "question": QUESTION}}, 400, "image"),
        ("json image number", {"json": {"image": 7, "question": QUESTION}}, 422, "image"),
        ("json question number", {"json": {"image": b64, "question": 7}}, 422, "question"),
        ("json float mc_samples", {"json": {"image": b64, "question": QUESTION, "mc_samples": 2.5}}, 422, "mc_samples"),
        ("json bool top_k", {"json": {"image": b64, "question": QUESTION, "top_k": True}}, 422, "top_k"),
        ("json string abstain", {"json": {"image": b64, "question": QUESTION, "abstain": "1"}}, 422, "abstain"),
        ("json not an object", {"json": [b64, QUESTION]}, 400, "body"),
        ("json unparsable", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, "body"),
        ("wrong content type", {"content": b"hello", "headers": {"content-type": "text/plain"}}, 415, "content-type"),
        ("no content type", {"content": b"hello"}, 415, "content-type"),
        ("body too large", {"files": {"image": ("x.png", b"\0" * 300_000, "image/png")}, "data": {"question": "q"}},
         413, "body"),
        ("broken multipart", {"content": b"--xx\r\nnonsense", "headers": {"content-type": f"{multipart}; boundary=xx"}},
         422, "image"),  # nothing readable in it
        ("no boundary", {"content": b"--xx\r\nnonsense", "headers": {"content-type": multipart}}, 400, "body"),
    ]  # fmt: skip


def test_every_bad_request_gets_a_4xx_naming_its_field_and_the_server_goes_on(client, shape_png):
    image = shape_png.read_bytes()
    ok = upload(shape_png)
    for name, kwargs, status, field in _bad_requests(image):
        r = client.post("/v1/predict", **kwargs)
        assert r.status_code == status, (name, r.status_code, r.text)
        body = r.json()
        assert body["field"] == field and body["error"], (name, body)
        assert "Traceback" not in r.text
        assert client.post("/v1/predict", **ok).status_code == 200, name  # still serving


def test_a_body_streamed_past_the_limit_is_refused_without_reading_it_all(client, shape_png):
    def chunks():
        yield b'{"image": "'
        for _ in range(100):
            yield b"A" * 10_000  # 1 MB, no content-length

    r = client.post("/v1/predict", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["field"] == "body"
    assert client.post("/v1/predict", **upload(shape_png)).status_code == 200


def test_the_librarys_refusals_become_422_with_their_message(client, shape_png):
    r = client.post("/v1/explain", **upload(shape_png, method="ucam", ucam_variant="loss", format="array"))
    assert r.status_code == 422 and "model.aleatoric=ucam" in r.json()["error"], r.text
    for field, value in (("method", "magic"), ("format", "gif"), ("samples", "0"), ("target", "answer")):
        r = client.post("/v1/explain", **upload(shape_png, **{field: value}))
        assert r.status_code == 422 and r.json()["field"] == field, r.text
    r = client.get("/v1/predict")
    assert r.status_code == 405 and r.json()["error"]
    assert client.post("/v1/predict", **upload(shape_png)).status_code == 200


# explain


def test_explain_gives_the_overlay_png_and_the_map_of_mumo_explain(client, tiny_run, shape_png, tmp_path):
    from mumo.tasks.vqa.explain import explain_example

    expected = explain_example(tiny_run, shape_png, QUESTION, "gradcam", out=tmp_path / "cli.png", device="cpu")
    r = client.post("/v1/explain", **upload(shape_png, method="gradcam"))
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    served = Image.open(io.BytesIO(r.content))
    served.load()
    assert served.format == "PNG" and served.size == Image.open(tmp_path / "cli.png").size
    r = client.post("/v1/explain", **as_json(shape_png, method="gradcam", format="array"))
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["grid"] == expected["grid"] and len(body["map"]) == body["grid"][0] * body["grid"][1]
    del expected["overlay"]
    assert_close(body, expected)
    attention = client.post("/v1/explain", **upload(shape_png, method="attention", format="array")).json()
    assert attention["method"] == "attention" and "guided" in attention


# health, readiness, metrics, schema


def test_health_readiness_metrics_and_schema(tiny_run, client, shape_png):
    app = create_app(tiny_run, threads=1, device="cpu")
    idle = TestClient(app)  # not started: the model is not loading
    assert idle.get("/healthz").json() == {"status": "ok"}
    r = idle.get("/readyz")
    assert r.status_code == 503 and r.json()["ready"] is False
    r = idle.post("/v1/predict", **upload(shape_png))
    assert r.status_code == 503 and "loading" in r.json()["error"]
    assert "mumo_model_ready 0" in idle.get("/metrics").text

    assert client.get("/readyz").json() == {"ready": True, "run": str(tiny_run)}
    client.post("/v1/predict", **upload(shape_png))
    r = client.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert re.search(r'^mumo_requests_total\{endpoint="/v1/predict",status="200"\} \d+$', text, re.M)
    assert re.search(r'^mumo_requests_total\{endpoint="/v1/predict",status="422"\} \d+$', text, re.M)
    assert re.search(r'^mumo_request_duration_seconds_bucket\{endpoint="/v1/predict",le="\+Inf"\} \d+$', text, re.M)
    assert batch_sizes(text)[1] > 0 and "mumo_model_ready 1" in text
    schema = client.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/explain", "/healthz", "/readyz", "/metrics"} <= schema["paths"].keys()
    body = schema["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json"} == body.keys()
    assert body["application/json"]["schema"]["properties"]["mc_samples"]["anyOf"][0]["maximum"] == 100


@pytest.mark.filterwarnings("ignore:Glyph")  # fuzzed questions hold characters the overlay's font lacks
def test_fuzzed_requests_from_the_schema_never_get_a_5xx(tiny_run, shape_png):
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    image = shape_png.read_bytes()  # half the cases send a real image, so that options reach the model
    app = create_app(tiny_run, max_delay_ms=0, threads=1, device="cpu", limits=LIMITS)
    schema = schemathesis.openapi.from_dict(app.openapi())
    with TestClient(app) as c:
        wait_ready(c)
        for path, examples in (("/v1/predict", 40), ("/v1/explain", 8)):

            @given(case=schema[path]["POST"].as_strategy(), real_image=st.booleans())
            @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def check(case, real_image: bool) -> None:
                kwargs = case.as_transport_kwargs(base_url="http://testserver")
                kwargs.pop("cookies", None)
                if "files" in kwargs:  # text parts as text, file parts as bytes, as a browser sends them
                    kwargs["files"] = [(k, _part(k, v, image if real_image else None)) for k, v in kwargs["files"]]
                elif real_image and isinstance(kwargs.get("json"), dict) and "image" in kwargs["json"]:
                    kwargs["json"]["image"] = base64.b64encode(image).decode()
                r = c.request(**kwargs)
                assert r.status_code < 500, (r.status_code, r.text)
                if r.status_code >= 400:
                    assert set(r.json()) == {"error", "field"}

            check()
        assert c.get("/healthz").status_code == 200


def _part(name: str, part: tuple, image: bytes | None) -> tuple:
    filename, value = part[0], part[1]
    if filename is None:  # a text field
        return None, value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return (filename, image, "image/png") if name == "image" and image is not None else part


# the real server: `mumo serve`


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mumo_serve_runs_a_real_server_until_stopped(tiny_run, shape_png):
    port = free_port()
    cmd = [sys.executable, "-m", "mumo.cli.__main__", "serve", str(tiny_run), "--port", str(port), "--threads", "1",
           "--device", "cpu", "--no-access-log"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            deadline = time.monotonic() + 120
            while True:
                assert proc.poll() is None, proc.communicate()[1][-3000:]
                try:
                    if http.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the server did not become ready"
                time.sleep(0.2)
            r = http.post("/v1/predict", **upload(shape_png))
            assert r.status_code == 200 and r.json()["question"] == QUESTION
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err and f"http://127.0.0.1:{port}" in err


def test_mumo_serve_refuses_what_it_cannot_serve_in_one_line(tiny_run, tmp_path):
    assert_one_line_error(mumo("serve", tmp_path / "missing"), "missing")
    other = tmp_path / "sync-run"
    other.mkdir()
    (other / "artifacts.json").write_text(json.dumps({"kind": "sync"}))
    assert_one_line_error(mumo("serve", other), "'sync'", "not a VQA model")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert_one_line_error(mumo("serve", tiny_run, "--port", port), f"port {port}", "in use")
    assert_one_line_error(mumo("serve", tiny_run, "--threads", 0), "--threads")
