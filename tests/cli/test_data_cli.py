"""``mumo data sort-of-clevr``: generation, determinism and the non-empty --out error."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from mumo.cli.__main__ import build_app

runner = CliRunner()


def mumo(*args):
    return runner.invoke(build_app(), [str(a) for a in args])


def test_sort_of_clevr_writes_the_data_set(tmp_path):
    out = tmp_path / "soc"
    result = mumo("data", "sort-of-clevr", "--out", out, "--train", 6, "--test", 2, "--seed", 5)
    assert result.exit_code == 0, result.output
    assert "wrote 6 train images" in result.output and "wrote 2 test images" in result.output
    meta = json.loads((out / "meta.json").read_text())
    assert meta["counts"] == {"train": 6, "test": 2} and meta["seed"] == 5
    assert len((out / "train.jsonl").read_text().splitlines()) == 6
    assert len(list((out / "images/test").glob("*.png"))) == 2
    assert len(list((out / "masks/train").glob("*.npz"))) == 6


def test_sort_of_clevr_is_deterministic(tmp_path):
    for name in ("a", "b"):
        assert mumo("data", "sort-of-clevr", "--out", tmp_path / name, "--train", 3, "--test", 1).exit_code == 0
    assert (tmp_path / "a/train.jsonl").read_bytes() == (tmp_path / "b/train.jsonl").read_bytes()
    assert (tmp_path / "a/meta.json").read_bytes() == (tmp_path / "b/meta.json").read_bytes()


def test_sort_of_clevr_refuses_a_non_empty_out(tmp_path):
    (tmp_path / "old.txt").write_text("x")
    result = mumo("data", "sort-of-clevr", "--out", tmp_path, "--train", 2, "--test", 1)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "not an empty directory" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["old.txt"]


def test_sort_of_clevr_refuses_negative_counts(tmp_path):
    result = mumo("data", "sort-of-clevr", "--out", tmp_path / "x", "--train", -1)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "between 1 and 1,000,000, not -1" in result.output
