"""``mumo demo``: the Gradio page on a tiny VQA run and a tiny lip-sync expert, called through ``gradio_client`` and
driven in Debian's headless chromium (Playwright), bad input included; nothing it does leaves this machine.

``MUMO_DEMO_SCREENSHOT=benchmarks/results/demo_screenshot.png pytest tests/serve/test_demo.py -k browser`` also saves
the answered page there (the README's screenshot)."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlparse

import numpy as np
import pytest

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # as `mumo demo` sets it, before Gradio is imported
pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")

from mumo.serve.demo import build_demo, launch  # noqa: E402 (after the environment is set)
from tests.cli._invoke import assert_clear_error, run_cli  # noqa: E402

QUESTION = "what shape is in the image?"
T = 5
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def _loopback(host: str | None) -> bool:
    if host in (None, "", "localhost"):
        return host is not None
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> Path:
    from tests.tasks.sync.test_sync import make_layout

    return make_layout(tmp_path_factory.mktemp("faces"))


@pytest.fixture(scope="module")
def sync_run(layout, tmp_path_factory) -> Path:
    """A tiny lip-sync expert, trained as tests/cli/test_sync_cli.py trains one (a few seconds)."""
    from tests.cli.test_sync_cli import TINY

    out = tmp_path_factory.mktemp("runs") / "sync"
    result = run_cli("train", "sync", "--data", layout, "--out", out, *TINY)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def server(tiny_run, sync_run):
    """The demo of both runs on a free port of 127.0.0.1, and every address this process connected to meanwhile."""
    connections: list = []
    real_connect = socket.socket.connect

    def connect(sock, address):
        connections.append(address)
        return real_connect(sock, address)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", connect)
        demo = build_demo([tiny_run, sync_run], device="cpu")
        url = launch(demo, port=_free_port(), prevent_thread_lock=True, quiet=True)
        try:
            yield SimpleNamespace(url=url, connections=connections, client=gradio_client.Client(url, verbose=False))
        finally:
            demo.close()


@pytest.fixture(scope="module")
def fake_png(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bad") / "fake.png"
    path.write_text("this is text, not a PNG\n")
    return path


# -- through gradio_client -------------------------------------------------------------------------------------------


def test_one_tab_per_run_with_named_endpoints(server):
    endpoints = server.client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/vqa", "/vqa_explain", "/sync"} <= set(endpoints)


def test_vqa_endpoint_answers_as_the_library_does(server, tiny_run, shape_png):
    from gradio_client import handle_file

    import mumo

    decision, label, uncertainty, raw = server.client.predict(
        handle_file(shape_png), QUESTION, T, "off", 1.0, True, api_name="/vqa"
    )
    ref = mumo.load(tiny_run, device="cpu").predict(shape_png, QUESTION, top_k=5, mc_samples=T).to_dict()
    assert raw == ref  # the same figures: same seed, same dropout masks
    assert ref["answer"] in decision and f"p = {ref['probability']:.3f}" in decision
    assert [c["label"] for c in label["confidences"]] == [a["answer"] for a in ref["top_k"]]
    assert f"{ref['uncertainty']['epistemic']:.4f}" in uncertainty and "in distribution" in uncertainty
    overlays = server.client.predict(handle_file(shape_png), QUESTION, T, api_name="/vqa_explain")
    from PIL import Image

    for path in overlays:
        with Image.open(path) as im:
            assert im.format == "PNG" and min(im.size) > 100


def test_vqa_abstains_above_its_threshold(server, shape_png):
    from gradio_client import handle_file

    decision, _, _, raw = server.client.predict(
        handle_file(shape_png), QUESTION, T, "predictive_entropy", 0.0, True, api_name="/vqa"
    )
    assert raw["abstained"] and "don't know" in decision and "predictive_entropy" in decision
    assert raw["best_guess"] in decision


def test_bad_vqa_input_comes_back_as_its_message(server, shape_png, fake_png):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    cases = [
        ((None, QUESTION), "no image: upload one or pick an example"),
        ((handle_file(fake_png), QUESTION), "not an image file (format not recognised): fake.png"),
        ((handle_file(shape_png), "   "), "question is empty"),
    ]
    for (image, question), message in cases:
        with pytest.raises(AppError) as err:
            server.client.predict(image, question, T, "off", 1.0, True, api_name="/vqa")
        assert str(err.value) == message  # the MumoError's line, the upload named as its user named it
        with pytest.raises(AppError) as err:
            server.client.predict(image, question, T, api_name="/vqa_explain")
        assert str(err.value) == message


def test_sync_tab_scores_a_video(server, talk_mp4, tmp_path, fake_png):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    video = talk_mp4
    text, raw = server.client.predict(handle_file(video), None, 3, api_name="/sync")
    assert raw["video"] == "talk.mp4" and raw["windows"] == 26 and raw["mc_samples"] == 3
    assert f"LSE-D** {raw['lse_d']:.4f}" in text and f"{raw['sync_probability_std']:.3f}" in text
    assert f"**Offset** {raw['offset_frames']:+d} frames" in text
    not_video = tmp_path / "clip.mp4"
    shutil.copy(fake_png, not_video)
    with pytest.raises(AppError, match=r"clip\.mp4") as err:
        server.client.predict(handle_file(not_video), None, 3, api_name="/sync")
    assert "/tmp" not in str(err.value) and "Traceback" not in str(err.value)


@pytest.fixture(scope="module")
def talk_mp4(tmp_path_factory) -> Path:
    """1.2 s of a real face (scikit-image's astronaut) with speech-like sound."""
    pytest.importorskip("cv2")
    skdata = pytest.importorskip("skimage.data")
    from mumo.data.av.video import write_video
    from tests.tasks.sync.test_sync import SR, _speech_like

    wav, _ = _speech_like(30, np.random.default_rng(1))
    path = tmp_path_factory.mktemp("video") / "talk.mp4"
    write_video(path, np.stack([skdata.astronaut()[::2, ::2]] * 30), fps=25, audio=wav, audio_rate=SR)
    return path


@pytest.fixture(scope="module")
def generators(layout, sync_run, talk_mp4, tmp_path_factory):
    """A demo of a tiny question generator, lip-sync generator and lip-to-speech model (trained in seconds, as their
    tests train them) and a client of it."""
    from mumo.data.scenes.dataset import generate
    from tests.tasks.lip2speech.test_lip2speech import TINY as LIP2SPEECH
    from tests.tasks.lipsync.test_lipsync_train import TINY as LIPSYNC
    from tests.tasks.vqg.test_vqg_task import TINY as VQG

    root = tmp_path_factory.mktemp("gen")
    generate(root / "scenes", n_images=80, seed=3, size=64)
    for args in (("vqg", f"data.root={root / 'scenes'}", *VQG),
                 ("lipsync", "--data", layout, *LIPSYNC, f"objective.expert={sync_run}"),
                 ("lip2speech", "--data", layout, *LIP2SPEECH)):  # fmt: skip
        result = run_cli("train", args[0], "--out", root / args[0], *args[1:])
        assert result.exit_code == 0, result.output
    demo = build_demo([root / "vqg", root / "lipsync", root / "lip2speech"], device="cpu")
    url = launch(demo, port=_free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield gradio_client.Client(url, verbose=False)
    finally:
        demo.close()


def test_question_generation_tab_writes_questions(generators, shape_png):
    from gradio_client import handle_file

    table, cues, raw = generators.predict(
        handle_file(shape_png), "", "", "red, circle", 3, api_name="/generate_questions"
    )
    assert len(table["data"]) == 3 == len(raw["questions"]) and "tag given: red, circle" in cues
    assert [row[0] for row in table["data"]] == [q["question"] for q in raw["questions"]]


def test_lipsync_tab_dubs_a_video(generators, talk_mp4, tmp_path):
    import soundfile as sf
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    from mumo.data.av.video import read_video
    from tests.tasks.sync.test_sync import SR, _speech_like

    speech = tmp_path / "speech.wav"
    sf.write(speech, _speech_like(25, np.random.default_rng(2))[0], SR)  # 1 s
    video, text = generators.predict(handle_file(talk_mp4), handle_file(speech), "", "en", api_name="/lipsync")
    assert read_video(video).frames.shape[0] == 25 and "from the video talk.mp4" in text
    with pytest.raises(AppError, match="exactly one of a speech file or a text"):
        generators.predict(handle_file(talk_mp4), None, "", "en", api_name="/lipsync")


def test_lip2speech_tab_speaks_a_video(generators, talk_mp4):
    import soundfile as sf
    from gradio_client import handle_file

    wav, mp4, text = generators.predict(handle_file(talk_mp4), 2, api_name="/lip2speech")
    assert abs(sf.info(wav).duration - 1.2) < 0.05 and Path(mp4).stat().st_size > 0
    assert "Spread over 2 dropout decodes" in text


def test_a_second_run_of_a_task_gets_its_own_endpoint(sync_run):
    demo = build_demo([sync_run, sync_run], device="cpu")
    assert {fn.api_name for fn in demo.fns.values()} >= {"sync", "sync_2"}


def test_the_command_refuses_a_missing_run_and_a_port_in_use(tiny_run, tmp_path):
    assert_clear_error(run_cli("demo", tmp_path / "nope"), "run directory does not exist")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = run_cli("demo", tiny_run, "--port", busy.getsockname()[1])
    assert_clear_error(result, "Address already in use", "pick another --port")
    assert len(result.output.strip().splitlines()) == 1


# -- in a browser ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright")
    if not CHROMIUM.exists():
        pytest.skip(f"the browser tests drive Debian's chromium, and there is none at {CHROMIUM}")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    """A fresh page of the demo, recording the host of every request it makes."""
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.hosts = []
    page.on("request", lambda r: page.hosts.append(urlparse(r.url)) if r.url.startswith(("http", "ws")) else None)
    page.on("websocket", lambda ws: page.hosts.append(urlparse(ws.url)))
    page.goto(server.url)
    page.wait_for_selector("#vqa-button")
    yield page
    assert page.hosts and all(_loopback(u.hostname) for u in page.hosts), {u.geturl() for u in page.hosts}
    page.close()


def _ask(page, image: Path | None, question: str) -> None:
    if image is not None:
        page.locator("#vqa-image input[type=file]").set_input_files(str(image))
    page.locator("#vqa-question textarea, #vqa-question input").first.fill(question)
    page.locator("#vqa-button").click()


def test_browser_answers_with_uncertainty_and_overlays(page, tiny_run, shape_png, tmp_path):
    import mumo

    ref = mumo.load(tiny_run, device="cpu").predict(shape_png, QUESTION, top_k=5, mc_samples=20)
    _ask(page, shape_png, QUESTION)
    page.wait_for_selector("#vqa-decision h2", timeout=60_000)
    assert page.locator("#vqa-decision h2").inner_text().strip() == ref.answer
    overlays = ", ".join(f"#vqa-{m} img" for m in ("attention", "gradcam", "ucam"))
    page.wait_for_function(
        f"() => {{ const imgs = document.querySelectorAll('{overlays}');"
        " return imgs.length === 3 && Array.from(imgs).every(i => i.complete && i.naturalWidth > 100); }",
        timeout=60_000,
    )
    body = page.locator("body").inner_text()
    assert "epistemic (mutual information)" in body and f"{ref.uncertainty.epistemic:.4f}" in body
    assert "in distribution" in body and "Traceback" not in body
    page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)
    if os.environ.get("MUMO_DEMO_SCREENSHOT"):
        page.screenshot(path=os.environ["MUMO_DEMO_SCREENSHOT"], full_page=True)


@pytest.mark.parametrize(
    ("upload", "message"),
    [("fake.png", "not an image file (format not recognised): fake.png"), (None, "no image: upload one")],
)
def test_browser_shows_bad_input_as_a_message(page, fake_png, upload, message, tmp_path):
    _ask(page, fake_png if upload else None, QUESTION)
    toast = page.locator("[data-testid=toast-text]").first
    toast.wait_for(timeout=30_000)
    assert message in toast.inner_text()
    assert "Traceback" not in page.content() and not page.locator("#vqa-decision h2").count()
    page.screenshot(path=str(tmp_path / "error.png"))


def test_nothing_left_this_machine(server):
    """Every connection this process opened while the demo was up (gradio_client's to the server) is to a
    loopback address: no analytics, no version check, no CDN."""
    hosts = {a[0] for a in server.connections if isinstance(a, tuple)}
    assert hosts and all(_loopback(h) for h in hosts), hosts
