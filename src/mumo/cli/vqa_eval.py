"""``mumo vqa-eval``: score a VQA results file the way the official evaluation does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from mumo.cli._errors import friendly_errors
from mumo.cli._json import strict_json
from mumo.errors import MumoError, special_file_kind


def _read_json(path: Path, role: str) -> Any:
    """Parse one JSON file; a missing, unreadable or invalid file is a MumoError naming it."""
    if path.exists() and not path.is_dir() and not path.is_file():  # /dev/zero or a FIFO would never end
        raise MumoError(f"{role} file is {special_file_kind(path)}, not a regular file: {path}")
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise MumoError(f"{role} file not found: {path}") from None
    except IsADirectoryError:
        raise MumoError(f"{role} file is a directory: {path}") from None
    except UnicodeDecodeError:
        raise MumoError(f"{role} file is not UTF-8 text: {path}") from None
    except json.JSONDecodeError as exc:
        raise MumoError(f"{role} file is not valid JSON: {path} (line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:  # [[[[...]]]] deeper than Python's recursion limit
        raise MumoError(f"{path}: not a VQA {role} file (nested too deeply)") from None
    except ValueError as exc:  # an integer longer than sys.get_int_max_str_digits() (4300)
        reason = "a number with too many digits" if "digits" in str(exc) else " ".join(str(exc).split())
        raise MumoError(f"{path}: not a VQA {role} file ({reason})") from None
    except OSError as exc:
        raise MumoError(f"cannot read {role} file {path}: {exc.strerror}") from None


@friendly_errors
def vqa_eval_cmd(
    questions: Annotated[Path, typer.Option(help="official questions JSON (v2_OpenEnded_mscoco_*_questions.json)")],
    annotations: Annotated[Path, typer.Option(help="official annotations JSON (v2_mscoco_*_annotations.json)")],
    results: Annotated[Path, typer.Option(help='results JSON: a list of {"question_id": int, "answer": str}')],
    metric_version: Annotated[
        str, typer.Option(help="2021 (current official code) or legacy (the openvqa / LAVIS copy)")
    ] = "2021",
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Official VQA accuracy of a results file, overall and per answer type."""
    from mumo.metrics.vqaeval import check_version, evaluate_results

    check_version(metric_version)  # fail fast, before reading large files
    q = _read_json(questions, "questions")
    a = _read_json(annotations, "annotations")
    r = _read_json(results, "results")
    res = evaluate_results(q, a, r, version=metric_version)
    if json_out:
        typer.echo(strict_json(res))
        return
    typer.echo(
        f"VQA accuracy (official vqaEval, {metric_version} version) {100 * res['accuracy']:.2f} "
        f"on {res['num_questions']} questions"
    )
    for k, v in sorted(res["accuracy_by_type"].items()):
        typer.echo(f"  {k:8s} {100 * v:.2f}")
