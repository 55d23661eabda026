"""A corrupted or hostile run directory is one line, ``error: corrupted run: FILE: what is wrong``, exit 2; no
pickle or YAML tag is ever executed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.reliability._cli import assert_one_line_error, mumo

CASES = {  # name: (file, content, what the line says)
    "config.yaml not YAML": ("config.yaml", "model: [unclosed\n", "config.yaml: not a config file"),
    "config.yaml a list": ("config.yaml", "- 1\n- 2\n", "config.yaml: holds no config"),
    "config.yaml empty": ("config.yaml", "", "config.yaml: holds no config"),
    "config.yaml a python tag": ("config.yaml", "!!python/object/apply:os.system ['touch PWNED']\n", "config.yaml"),
    "config.yaml an unknown key": ("config.yaml", "model:\n  hiddn: 3\n", "unknown config key 'model.hiddn'"),
    "artifacts.json a list": ("artifacts.json", "[1, 2]", "artifacts.json: holds a list"),
    "artifacts.json without answers": (
        "artifacts.json", json.dumps({"kind": "vqa", "vocab": ["a"]}), "'answers' is not a list of words",
    ),
    "artifacts.json vocab not a list": (
        "artifacts.json", json.dumps({"kind": "vqa", "vocab": 5, "answers": ["a"]}), "'vocab' is not a list",
    ),
    "state.json best an integer": (
        "state.json", json.dumps({"last": "epoch-0001", "best": 1, "history": []}), "state.json: its 'best'",
    ),
    "state.json a list": ("state.json", "[]", "state.json: holds a list"),
    "state.json nested too deeply": ("state.json", "[" * 100_000 + "]" * 100_000, "state.json: not valid JSON"),
    "config.yaml missing": ("config.yaml", None, "config.yaml: missing"),
    "config.yaml asks for a huge tensor": ("config.yaml", lambda text: text.replace("ff: 32", "ff: 100000000000"),
                                           "model.ff=100000000000"),
    "model.safetensors a tensor of the wrong shape": (
        "checkpoints/BEST/model.safetensors", "decoder.0.ffn.net.0.weight",
        "decoder.0.ffn.net.0.weight is (7, 3) in the file, (32, 16) in the model",
    ),
}  # fmt: skip


def _resolve(file: str, run) -> str:
    """``file`` with BEST standing for the checkpoint ``mumo evaluate`` loads."""
    if "BEST" not in file:
        return file
    return file.replace("BEST", json.loads((run / "state.json").read_text())["best"])


def _corrupt(path, content) -> None:
    """Write ``content`` into ``path``: text, None (delete it), a function of the old text, or (for a
    .safetensors file) the name of the tensor to replace by one of the wrong shape."""
    if content is None:
        path.unlink()
    elif callable(content):
        old = path.read_text()
        path.write_text(content(old))
        assert path.read_text() != old
    elif path.suffix == ".safetensors":
        tensors = load_file(path)
        assert content in tensors
        tensors[content] = torch.zeros(7, 3)
        save_file(tensors, path)
    else:
        path.write_text(content)


@pytest.fixture(scope="module")
def outcomes(tiny_run, tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, object]]:
    out = {}
    for name, (file, content, _) in CASES.items():
        run = tmp_path_factory.mktemp("corrupt") / "run"
        shutil.copytree(tiny_run, run)
        _corrupt(run / _resolve(file, run), content)
        out[name] = (mumo("evaluate", run, "--images", "5"), run)
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_a_corrupted_run_is_one_line_naming_the_file(outcomes, name):
    result, run = outcomes[name]
    file, _, says = CASES[name]
    line = assert_one_line_error(result, says)
    if name != "config.yaml an unknown key":
        assert "corrupted run: " in line and str(run / _resolve(file, run)) in line, line
    assert (run / "state.json").exists() and (run / "checkpoints").is_dir()  # nothing deleted
    assert not (run / "PWNED").exists() and not list(run.parent.glob("PWNED"))


def test_the_console_script_says_the_same(tiny_run, tmp_path, shape_png):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "artifacts.json").write_text("[1, 2]")
    cmd = [sys.executable, "-m", "mumo.cli", "predict", str(run), "--image", str(shape_png), "--question", "what?"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "corrupted run: " in res.stderr, res.stderr
