"""The CLI's ``--json`` output: strict JSON (RFC 8259), which every JSON reader takes.

Python's ``json`` writes an undefined figure (an AUROC with no errors to detect, an interval from too few
errors) as the bare word ``NaN``, which ``jq``, JavaScript and most other readers reject. Here every float
that is not finite becomes ``null``.
"""

from __future__ import annotations

from mumo.types import finite_or_null, strict_json

__all__ = ["finite_or_null", "strict_json"]
