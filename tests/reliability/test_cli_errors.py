"""Bad input through the real ``mumo`` command: one line ``error: ...`` on stderr and exit status 2, never a
traceback or Click's boxed panel; usage errors point to ``--help``; ``--help`` itself still works.

Every command line runs once, in this process, through the command's own entry point (``run_friendly`` over
``build_app()``, what ``main()`` runs) in the module fixture ``outcomes``; the tests then check one outcome each.
``test_the_console_script_is_the_same_entry_point`` checks the real ``python -m mumo.cli`` once (each start of
``mumo`` imports torch, about 2 s).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import tiny_config
from tests.reliability._cli import assert_one_line_error, mumo

MISSING = "no-such-run"  # never read: the checks of these command lines come first

USAGE_ERRORS = {  # name: (command line, fragments of the error line)
    "unknown command": (["bogus"], "no such command 'bogus'", "(see mumo --help)"),
    "missing option": (["predict", MISSING], "missing option '--image'", "(see mumo predict --help)"),
    "not an integer": (
        ["predict", MISSING, "--image", "x.png", "--question", "y?", "--top-k", "abc"],
        "invalid value for '--top-k'",
        "(see mumo predict --help)",
    ),
    "missing argument": (["evaluate"], "missing argument", "(see mumo evaluate --help)"),
    "unknown option": (["train", "vqa", "--bogus-flag"], "--bogus-flag", "(see mumo train vqa --help)"),
    "missing option of a data command": (
        ["data", "talking-faces"],
        "missing option '--out'",
        "(see mumo data talking-faces --help)",
    ),
    "option without its value": (["evaluate", MISSING, "--split"], "'--split'", "(see mumo evaluate --help)"),
}
HELP = {"mumo --help": [], "mumo predict --help": ["predict"]}
ABSTAIN = ("nan", "inf", "-inf")
TEMPERATURE = ("inf", "1e-300", "nan", "1e4")
BAD_JSON = {
    "nested 100k deep": ("[" * 100_000 + "]" * 100_000, "(nested too deeply)"),
    "a 5000-digit integer": ('{"questions": [{"question_id": ' + "9" * 5000 + "}]}", "(a number with too many digits)"),
}


def test_the_console_script_is_the_same_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "mumo.cli", "bogus"], capture_output=True, text=True, timeout=120
    )  # fmt: skip
    assert result.returncode == 2 and result.stderr == "error: no such command 'bogus' (see mumo --help)\n"


@pytest.fixture(scope="module")
def micro_run(tmp_path_factory) -> Path:
    """A real VQA run, as small as one can be (1 epoch on 32 images, a few seconds)."""
    from mumo.tasks.vqa.train import train_vqa

    out = tmp_path_factory.mktemp("runs") / "micro"
    train_vqa(tiny_config("train.epochs=1", "data.max_train_images=32"), out, progress=False, evaluate_test=False)
    return out


@pytest.fixture(scope="module")
def bad_json(tmp_path_factory) -> dict[str, Path]:
    """BAD_JSON's files, and ``other``: a valid JSON file for the arguments that are not under test."""
    folder = tmp_path_factory.mktemp("vqa-eval")
    files = {"other": folder / "other.json"}
    files["other"].write_text("{}")
    for i, (name, (content, _)) in enumerate(BAD_JSON.items()):
        files[name] = folder / f"questions-{i}.json"
        files[name].write_text(content)
    return files


@pytest.fixture(scope="module")
def outcomes(micro_run, bad_json) -> dict[str, subprocess.CompletedProcess]:
    """Every command line of this module, by name."""
    commands = {name: case[0] for name, case in USAGE_ERRORS.items()}
    commands |= {name: [*args, "--help"] for name, args in HELP.items()}
    for value in ABSTAIN:  # neither the run nor the image nor the question is read before the threshold
        commands[f"--abstain {value}"] = ["predict", MISSING, "--image", "x.png", "--question", "?", "--abstain", value]
    for value in TEMPERATURE:
        commands[f"--temperature {value}"] = ["evaluate", micro_run, "--temperature", value]
    other = bad_json["other"]
    for name in BAD_JSON:
        commands[name] = ["vqa-eval", "--questions", bad_json[name], "--annotations", other, "--results", other]
    return {name: mumo(*args) for name, args in commands.items()}


@pytest.mark.parametrize("name", list(USAGE_ERRORS))
def test_a_usage_error_is_one_line_with_a_pointer_to_help(outcomes, name):
    _, *fragments = USAGE_ERRORS[name]
    assert_one_line_error(outcomes[name], *fragments, "--help")


@pytest.mark.parametrize("name", list(HELP))
def test_help_still_prints_the_usage_and_exits_0(outcomes, name):
    result = outcomes[name]
    assert result.returncode == 0, result.stderr
    assert f"Usage: {name.removesuffix(' --help')} [OPTIONS]" in result.stdout
    assert "error" not in result.stderr


@pytest.mark.parametrize("value", ABSTAIN)
def test_predict_refuses_an_abstain_threshold_that_is_not_finite(outcomes, value):
    assert_one_line_error(outcomes[f"--abstain {value}"], "--abstain must be a finite number", f"not {value}")


@pytest.mark.parametrize("value", TEMPERATURE)
def test_evaluate_refuses_a_temperature_out_of_range(outcomes, value):
    line = assert_one_line_error(outcomes[f"--temperature {value}"], "--temperature must be > 0")
    assert "from 0.001 to 1000" in line and f"not {value}" in line


@pytest.mark.parametrize("name", list(BAD_JSON))
def test_vqa_eval_names_a_file_it_cannot_parse(outcomes, bad_json, name):
    _, reason = BAD_JSON[name]
    assert_one_line_error(outcomes[name], f"{bad_json[name]}: not a VQA questions file {reason}")
