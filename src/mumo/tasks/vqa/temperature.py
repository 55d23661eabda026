"""Temperature scaling for a trained VQA run: fit T on its validation split, save it with the run.

``mumo fit-temperature RUN`` writes ``RUN/temperature.json``; ``mumo evaluate`` and :func:`mumo.load`
then divide the answer logits by T (``--temperature none`` / ``temperature=1.0`` turns it off). The fit
uses the deterministic logits of the validation questions against their top answers (exact match,
as calibration does); for a model with an aleatoric head the learned logit noise is left out of the
fit and scaled by the same T at prediction.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mumo.errors import MumoError
from mumo.runs import Run
from mumo.tasks.vqa.config import RunConfig
from mumo.train.checkpoint import atomic_write_text
from mumo.uncertainty.temperature import fit_temperature, temperature_nll

TEMPERATURE_FILE = "temperature.json"


def fit_run_temperature(run_dir: str | Path, *, device: str = "auto") -> dict[str, Any]:
    """Fit T on the run's validation split, save it as ``RUN/temperature.json`` and return what was saved."""
    from mumo.tasks.vqa.accuracy import predict_logits
    from mumo.tasks.vqa.data import load_data
    from mumo.tasks.vqa.model import load_model

    run_dir = Path(run_dir)
    model = load_model(run_dir, device=device)
    cfg = Run(run_dir).config(RunConfig)
    val = load_data(cfg).val
    if val.num_questions == 0:
        raise MumoError("the run's validation split holds no questions to fit a temperature on")
    ids, logits = predict_logits(model, val, cfg.train.eval_batch_size)  # (N,), (N, C)
    targets = val.targets[ids]  # (N, C)
    answerable = targets.max(-1).values > 0  # a question with no answer in the vocabulary has no label
    logits, labels = logits[answerable], targets[answerable].argmax(-1)  # (n, C), (n,)
    if labels.numel() == 0:
        raise MumoError("no validation question has an answer in the run's answer vocabulary")
    t = fit_temperature(logits, labels)
    res = {
        "temperature": t,
        "fit_questions": int(labels.numel()),
        "val_nll_before": temperature_nll(logits, labels, 1.0),
        "val_nll_after": temperature_nll(logits, labels, t),
    }
    atomic_write_text(run_dir / TEMPERATURE_FILE, json.dumps(res, indent=2) + "\n")
    return res


def load_run_temperature(run_dir: str | Path) -> float | None:
    """The temperature saved with a run, or None when it has none.

    Raises:
        MumoError: the file is unreadable or holds no positive temperature.
    """
    path = Path(run_dir) / TEMPERATURE_FILE
    if not path.exists():
        return None
    try:
        t = float(json.loads(path.read_text())["temperature"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise MumoError(f"cannot read {path}: {e}; refit it with `mumo fit-temperature {run_dir}`") from None
    if not t > 0:
        raise MumoError(f"{path} holds temperature {t}, not > 0; refit it with `mumo fit-temperature {run_dir}`")
    return t
