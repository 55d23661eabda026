"""``mumo vqa-eval``: text and JSON output, both metric versions, and bad files (one line, exit 2)."""

from __future__ import annotations

import json

import pytest

from tests.cli.test_cli import _assert_clean_error, mumo
from tests.metrics.test_vqaeval import official_fixture


@pytest.fixture
def vqa_files(tmp_path):
    """Four questions: 2021 scores 1, 0.9, 0.3, 1 (80.00); legacy scores 1, 0.9, 0.3, 0 (55.00)."""
    questions, annotations, results = official_fixture()
    paths = {}
    for name, obj in (("questions", questions), ("annotations", annotations), ("results", results)):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(obj))
    return paths


def _args(paths, **override):
    p = {**paths, **override}
    return ["vqa-eval", "--questions", p["questions"], "--annotations", p["annotations"], "--results", p["results"]]


def test_json_2021(vqa_files):
    result = mumo(*_args(vqa_files), "--json")
    assert result.exit_code == 0, result.output
    res = json.loads(result.output)
    assert res["accuracy"] == pytest.approx(0.8)
    assert res["accuracy_by_type"] == pytest.approx({"yes/no": 1.0, "number": 0.9, "other": 0.65})
    assert res["metric_version"] == "2021" and res["num_questions"] == 4


def test_json_legacy(vqa_files):
    result = mumo(*_args(vqa_files), "--metric-version", "legacy", "--json")
    assert result.exit_code == 0, result.output
    res = json.loads(result.output)
    assert res["accuracy"] == pytest.approx(0.55)
    assert res["accuracy_by_type"]["other"] == pytest.approx(0.15)
    assert res["metric_version"] == "legacy"


@pytest.mark.parametrize(("version", "overall", "other"), [("2021", "80.00", "65.00"), ("legacy", "55.00", "15.00")])
def test_text(vqa_files, version, overall, other):
    result = mumo(*_args(vqa_files), "--metric-version", version)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert version in lines[0] and overall in lines[0] and "4 questions" in lines[0]
    assert any(line.split() == ["yes/no", "100.00"] for line in lines)
    assert any(line.split() == ["number", "90.00"] for line in lines)
    assert any(line.split() == ["other", other] for line in lines)


def test_unknown_version(vqa_files):
    _assert_clean_error(mumo(*_args(vqa_files), "--metric-version", "2017"), "unknown VQA metric version")


@pytest.mark.parametrize("role", ["questions", "annotations", "results"])
def test_missing_file(vqa_files, tmp_path, role):
    _assert_clean_error(mumo(*_args(vqa_files, **{role: tmp_path / "nope.json"})), f"{role} file not found")


@pytest.mark.parametrize("role", ["questions", "annotations", "results"])
def test_invalid_json(vqa_files, tmp_path, role):
    bad = tmp_path / "bad.json"
    bad.write_text('{"questions": [')
    _assert_clean_error(mumo(*_args(vqa_files, **{role: bad})), f"{role} file is not valid JSON")


def test_not_utf8(vqa_files, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    _assert_clean_error(mumo(*_args(vqa_files, results=bad)), "results file is not UTF-8")


def test_directory(vqa_files, tmp_path):
    _assert_clean_error(mumo(*_args(vqa_files, annotations=tmp_path)), "annotations file")


def test_results_do_not_cover_annotations(vqa_files, tmp_path):
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps([{"question_id": 1, "answer": "yes"}, {"question_id": 42, "answer": "no"}]))
    result = mumo(*_args(vqa_files, results=partial))
    _assert_clean_error(result, "3 annotated questions have no result (e.g. 2, 3, 4)")
    assert "1 results are for questions not in the annotations (e.g. 42)" in result.output


def test_wrong_file_swapped(vqa_files):
    # annotations given as questions: names the file role and the missing key
    _assert_clean_error(
        mumo(*_args(vqa_files, questions=vqa_files["annotations"])), "questions file: missing key 'questions'"
    )
