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
    """The table shows the JSON's figures (the same seeded sample): a row per condition, a column per type."""
    result = mumo("probe", tiny_run, "--split", "val", "--images", "10")
    assert result.exit_code == 0, result.output
    res = json.loads(mumo("probe", tiny_run, "--split", "val", "--images", "10", "--json").output)
    lines = result.output.splitlines()
    assert lines[0] == f"val: {res['num_questions']} questions about 10 images (seed 0)"
    columns = ["overall", *res["by_type"]]
    assert lines[1].split() == columns
    rows = {" ".join(line.split()[: -len(columns)]): line.split()[-len(columns) :] for line in lines[2:]}
    for label, key in (("real image", "accuracy_real"), ("blank image", "accuracy_blank_image"),
                       ("shuffled image", "accuracy_shuffled_image"), ("blank question", "accuracy_blank_question"),
                       ("answers changed", "answer_change_rate")):  # fmt: skip
        assert rows[label] == [f"{r[key]:.4f}" for r in (res, *res["by_type"].values())], label
    assert rows["looks at image"] == ["yes" if r["looks_at_image"] else "NO" for r in (res, *res["by_type"].values())]
    assert lines[-1] == res["verdict"]


def test_probe_bad_input(tiny_run, tmp_path):
    _assert_clean_error(mumo("probe", tmp_path / "nope"), "does not exist")
    _assert_clean_error(mumo("probe", tmp_path), "not a mumo run")
    (tmp_path / "artifacts.json").write_text(json.dumps({"kind": "syncnet"}))
    _assert_clean_error(mumo("probe", tmp_path, "--json"), "not a VQA model")
    _assert_clean_error(mumo("probe", tiny_run, "--split", "train"), "--split")
    _assert_clean_error(mumo("probe", tiny_run, "--images", "1"), "--images")
