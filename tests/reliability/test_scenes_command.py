"""``mumo data scenes``: what it writes, and bad input as one line with exit status 2 and nothing written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.reliability._cli import assert_one_line_error, mumo


def _without_progress(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    lines = [line for line in result.stderr.replace("\r", "\n").splitlines() if line and not line.startswith("scenes")]
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout, "\n".join(lines) + "\n")


def test_scenes_writes_every_split_and_says_so(tmp_path):
    out = tmp_path / "scenes"
    result = mumo("data", "scenes", "--out", out, "--images", 10, "--size", 64, "--seed", 2, "--workers", 1)
    assert result.returncode == 0, result.stderr
    assert "wrote 7 train images (70 questions)" in result.stdout
    assert "wrote 1 test-shift images" in result.stdout and "64 px" in result.stdout
    meta = json.loads((out / "meta.json").read_text())
    assert meta["counts"] == {"train": 7, "val": 1, "test": 1, "test-shift": 1} and meta["seed"] == 2
    assert len(list((out / "images" / "train").glob("*.png"))) == 7


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--images", "0"], ["image count must be between 4", "not 0"]),
        (["--images", "-3"], ["image count must be between 4"]),
        (["--size", "32"], ["image size must be between 64 and 256", "not 32"]),
        (["--size", "300"], ["image size must be between 64 and 256"]),
        (["--seed", "-1"], ["seed must be between"]),
    ],
)
def test_bad_arguments_are_one_line_and_write_nothing(tmp_path, args, fragments):
    result = mumo("data", "scenes", "--out", tmp_path / "out", *args)
    assert_one_line_error(_without_progress(result), *fragments)
    assert list(tmp_path.iterdir()) == []


def test_a_non_empty_out_is_refused_unless_overwrite_replaces_a_previous_set(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert_one_line_error(mumo("data", "scenes", "--out", out, "--images", 4), "exists and is not empty", "--overwrite")
    result = mumo("data", "scenes", "--out", out, "--images", 4, "--overwrite")
    assert_one_line_error(result, "is not one")
    assert (out / "notes.txt").read_text() == "mine"
    previous = tmp_path / "previous"
    assert mumo("data", "scenes", "--out", previous, "--images", 4, "--size", 64).returncode == 0
    result = mumo("data", "scenes", "--out", previous, "--images", 8, "--size", 64, "--overwrite")
    assert result.returncode == 0, result.stderr
    assert json.loads((previous / "meta.json").read_text())["counts"]["train"] == 5


def test_ctrl_c_stops_the_workers_and_leaves_out_as_it_was(tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "mumo.cli", "data", "scenes", "--out", str(out), "--images", "4000", "--size", "64",
           "--workers", "2"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while not any(tmp_path.glob("out.partial-*/images/train/*.png")) and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C reaches the whole process group
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    lines = [x for x in stderr.replace("\r", "\n").splitlines() if x and not x.startswith("scenes")]
    assert lines == [f"interrupted; {out} is left as it was (run the command again)"], stderr
    assert list(tmp_path.iterdir()) == []
