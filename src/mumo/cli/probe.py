"""``mumo probe``: the Clever Hans probe of a trained VQA run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mumo.cli._errors import friendly_errors
from mumo.cli._json import strict_json

_ROWS = (
    ("real image", "accuracy_real"),
    ("blank image", "accuracy_blank_image"),
    ("shuffled image", "accuracy_shuffled_image"),
    ("blank question", "accuracy_blank_question"),
    ("answers changed", "answer_change_rate"),
)


@friendly_errors
def probe_cmd(
    run: Annotated[Path, typer.Argument(help="run directory")],
    split: Annotated[str, typer.Option(help="val or test")] = "test",
    images: Annotated[int | None, typer.Option(help="probe a seeded sample of N images (default: all)")] = None,
    seed: Annotated[int, typer.Option(help="seed of the image sample and of the image shuffle")] = 0,
    device: Annotated[str, typer.Option(help="auto (a GPU if there is one), cpu, cuda, cuda:N or mps")] = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Does the model look at the image? Accuracy with the real, blanked and shuffled image and with the
    question blanked, overall and per question type, and how many answers change with another image."""
    from mumo.tasks import Probes, require

    res = require(run, Probes, "mumo probe", "a VQA model").probe_run(
        run, split=split, max_images=images, seed=seed, device=device
    )
    typer.echo(strict_json(res) if json_out else format_probe(res))


def format_probe(res: dict[str, Any]) -> str:
    """A plain-text table of a :func:`mumo.tasks.vqa.probe.probe_run` result: conditions x (overall, types)."""
    cols = {"overall": res, **res["by_type"]}
    width = max(8, *(len(c) for c in cols))
    lines = [
        f"{res['split']}: {res['num_questions']} questions about {res['num_images']} images (seed {res['seed']})",
        f"{'':16s}" + "".join(f"{c:>{width + 2}s}" for c in cols),
    ]
    for label, key in _ROWS:
        lines.append(f"{label:16s}" + "".join(f"{r[key]:>{width + 2}.4f}" for r in cols.values()))
    looks = ("yes" if r["looks_at_image"] else "NO" for r in cols.values())
    lines.append(f"{'looks at image':16s}" + "".join(f"{v:>{width + 2}s}" for v in looks))
    lines.append(res["verdict"])
    return "\n".join(lines)
