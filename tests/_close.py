"""Comparing nested results (dicts, lists, floats) as tests of batched and single predictions need."""

from __future__ import annotations

import math


def assert_close(a: object, b: object, where: str = "") -> None:
    """Equal structure and values; floats within 1e-5 (relative for large figures such as densities)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            assert_close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, f"{where}[{i}]")
    elif isinstance(a, float):
        assert math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-5), (where, a, b)
    else:
        assert a == b, (where, a, b)
