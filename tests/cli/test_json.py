"""Strict JSON for the CLI's --json output: undefined figures are null, never the bare word NaN."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mumo.cli._json import finite_or_null, strict_json


def _strict_loads(text: str):
    """``json.loads`` that refuses NaN and Infinity, as jq, JavaScript and RFC 8259 do."""

    def refuse(word: str):
        raise ValueError(f"not JSON: {word}")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_floats_become_null_at_any_depth():
    value = {"auroc": float("nan"), "ci95": (float("nan"), 0.9), "by_type": {"shape": float("-inf"), "color": 0.5},
             "rows": [{"nll": float("inf")}], "n": 3, "name": "NaN", "ok": True, "none": None}  # fmt: skip
    expected = {"auroc": None, "ci95": [None, 0.9], "by_type": {"shape": None, "color": 0.5},
                "rows": [{"nll": None}], "n": 3, "name": "NaN", "ok": True, "none": None}  # fmt: skip
    assert finite_or_null(value) == expected
    assert _strict_loads(strict_json(value)) == finite_or_null(value)


def test_numpy_floats_are_floats_too():
    out = _strict_loads(strict_json({"a": np.float64("nan"), "b": np.float64(0.25)}))
    assert out == {"a": None, "b": 0.25}


def test_finite_values_are_unchanged_and_indent_is_kept():
    value = {"x": [1.5, -2.0, 0.0], "y": {"z": 1e-300}}
    assert strict_json(value) == json.dumps(value)
    assert strict_json(value, indent=2) == json.dumps(value, indent=2)


def test_plain_json_dumps_is_what_this_guards_against():
    with pytest.raises(ValueError, match="NaN"):
        _strict_loads(json.dumps({"a": math.nan}))
