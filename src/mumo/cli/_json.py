"""The CLI's ``--json`` output: strict JSON (RFC 8259), which every JSON reader takes.

Python's ``json`` writes an undefined figure (an AUROC with no errors to detect, an interval from too few
errors) as the bare word ``NaN``, which ``jq``, JavaScript and most other readers reject. Here every float
that is not finite becomes ``null``.
"""

from __future__ import annotations

import json
import math
from typing import Any


def finite_or_null(value: Any) -> Any:
    """``value`` with every NaN or infinite float, at any depth of dicts, lists and tuples, replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(v) for v in value]
    return value


def strict_json(value: Any, *, indent: int | None = None) -> str:
    """``json.dumps`` of ``value`` with non-finite floats as ``null``; never writes NaN or Infinity."""
    return json.dumps(finite_or_null(value), indent=indent, allow_nan=False)
