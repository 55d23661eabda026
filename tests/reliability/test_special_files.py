"""A device (``/dev/zero``) or a FIFO where a file is expected is named for what it is, one line, exit 2: never
read (it would never end) and never reported as "empty (0 bytes)"."""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading

import pytest

from tests.reliability._cli import assert_one_line_error, mumo

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX devices and FIFOs")

SPECIALS = {"/dev/zero": "a character device", "a FIFO": "a FIFO (named pipe)"}
RUN_FILES = ["config.yaml", "artifacts.json", "state.json", "checkpoints/BEST/model.safetensors"]


def _special(path, kind: str) -> None:
    """Make ``path`` a link to /dev/zero or a FIFO."""
    if path.exists():
        path.unlink()
    if kind == "/dev/zero":
        path.symlink_to("/dev/zero")
    else:
        os.mkfifo(path)


def _mumo_within(seconds: float, *args: object):
    """``mumo ARGS`` in a daemon thread; fails the test if it has not returned after ``seconds`` (it is reading
    a file that never ends)."""
    box = []
    thread = threading.Thread(target=lambda: box.append(mumo(*args)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert box, f"mumo {' '.join(map(str, args))} still running after {seconds} s"
    return box[0]


@pytest.mark.parametrize("kind", list(SPECIALS))
def test_an_image_that_is_a_device_or_a_fifo(tiny_run, tmp_path, kind):
    image = tmp_path / "image.png"
    _special(image, kind)
    result = _mumo_within(60, "predict", tiny_run, "--image", image, "--question", "what shape is this?")
    assert_one_line_error(result, f"image path is {SPECIALS[kind]}, not a regular file", str(image))


@pytest.mark.parametrize("kind", list(SPECIALS))
def test_a_vqa_eval_input_that_is_a_device_or_a_fifo(tmp_path, kind):
    ok = tmp_path / "ok.json"
    ok.write_text("[]")
    questions = tmp_path / "questions.json"
    _special(questions, kind)
    result = _mumo_within(60, "vqa-eval", "--questions", questions, "--annotations", ok, "--results", ok)
    assert_one_line_error(result, f"questions file is {SPECIALS[kind]}, not a regular file", str(questions))


@pytest.mark.parametrize("kind", list(SPECIALS))
@pytest.mark.parametrize("file", RUN_FILES)
def test_a_run_file_that_is_a_device_or_a_fifo_is_a_corrupted_run(tiny_run, tmp_path, file, kind):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    path = run / file.replace("BEST", json.loads((tiny_run / "state.json").read_text())["best"])
    _special(path, kind)
    result = _mumo_within(60, "evaluate", run, "--images", "5")
    assert_one_line_error(result, f"corrupted run: {path}: {SPECIALS[kind]}")
