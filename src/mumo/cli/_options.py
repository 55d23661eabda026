"""Options that several commands share, declared once so their help reads the same everywhere."""

from __future__ import annotations

from typing import Annotated

import typer

MCScope = Annotated[
    str,
    typer.Option(
        help="dropout modules that sample: all, or attflat (only MCAN's AttFlat scoring MLPs: cheaper, its "
        "mutual information is not comparable with all's; head is a deprecated alias)"
    ),
]
