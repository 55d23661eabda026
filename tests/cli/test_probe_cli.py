"""``mumo probe``: JSON and table output on a trained run; bad input is one line and exit 2."""

from __future__ import annotations

import json

from tests.cli.test_cli import _assert_clean_error, mumo

KEYS = {
    "accuracy_real", "accuracy_blank_image", "accuracy_shuffled_image", "accuracy_blank_question",
    "answer_change_rate", "looks_at_image", "verdict",
}  # fmt: skip


def test_probe_json(tiny_run):
    result = mumo("probe", tiny_run, "--split", "val", "--images", "30", "--json")
    assert result.exit_code == 0, result.output
    res = json.loads(result.output)
    assert res.keys() >= KEYS | {"by_type", "num_questions"}
    assert res["num_images"] == 30 and isinstance(res["looks_at_image"], bool)
    assert set(res["by_type"]) == {"yes/no", "color", "shape"}
    for r in res["by_type"].values():
        assert r.keys() >= KEYS
        assert all(0.0 <= r[k] <= 1.0 for k in KEYS - {"looks_at_image", "verdict"})


def test_probe_table(tiny_run):
    result = mumo("probe", tiny_run, "--split", "val", "--images", "10")
    assert result.exit_code == 0, result.output
    for fragment in ("overall", "shuffled image", "blank question", "answers changed", "looks at image", "image"):
        assert fragment in result.output


def test_probe_bad_input(tiny_run, tmp_path):
    _assert_clean_error(mumo("probe", tmp_path / "nope"), "does not exist")
    _assert_clean_error(mumo("probe", tmp_path), "not a mumo run")
    (tmp_path / "artifacts.json").write_text(json.dumps({"kind": "syncnet"}))
    _assert_clean_error(mumo("probe", tmp_path, "--json"), "not a VQA model")
    _assert_clean_error(mumo("probe", tiny_run, "--split", "train"), "--split")
    _assert_clean_error(mumo("probe", tiny_run, "--images", "1"), "--images")
