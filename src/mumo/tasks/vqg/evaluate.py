"""``mumo evaluate`` for question-generation runs: caption metrics over T Monte Carlo samples, and on mumo scenes
whether the questions are valid, answerable and diverse, and whether their uncertainty finds the bad ones.

Protocol (reference §5, as the seed reports it): every image of the split gets one question per dropout pass; each
pass's questions are scored as a whole split against the image's first ``data.references`` questions (BLEU-1..4,
METEOR 1.5, ROUGE-L, CIDEr-D from pycocoevalcap), and the T corpus scores give "max" and "mean ± std". The cues:
the place from the model's place head (the paper's place CNN; the true place when the image is not a cue), the
image's first caption (ground truth, as the paper's COCO captions) and the tags of the image's first reference
question (as the paper's question tags).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mumo.errors import ConfigError
from mumo.models.vqg_bmn import VQGBMN, Cues, ImageFeatures
from mumo.runs import Run
from mumo.tasks.vqg.config import VQGRunConfig
from mumo.tasks.vqg.data import VQGSplit, detokenize, read_records, tensorize
from mumo.tasks.vqg.generate import Decoding, check_samples, generate, question_uncertainty
from mumo.tasks.vqg.train import load_vqg_model, one_hot_places, read_vocab

SPLITS = ("val", "test", "test-shift")
# what `mumo evaluate` offers VQA runs and a question-generation run does not take (their "off" values)
_VQA_ONLY = {
    "mc_scope": "all", "ood": None, "pixel_noise": None, "feature_noise": None, "corruption": None, "severity": None,
    "abstain": None, "temperature": "auto", "ensemble": (), "results_json": None,
}  # fmt: skip


@dataclass(frozen=True)
class VQGEvaluationOptions:
    """How a question-generation run is evaluated."""

    split: str = "test"
    images: int | None = None  # the split's first N images only; None = all
    samples: int = 5  # T dropout passes, one question per image each
    mc: bool = True  # False: dropout off at inference (MC-SMN): T identical passes
    decoding: Decoding = field(default_factory=Decoding)
    meteor: bool = True  # METEOR 1.5 needs Java
    seed: int = 0
    device: str = "auto"
    batch_size: int = 256
    examples: int = 8  # images whose questions the report lists
    keep_questions: bool = False  # also list every generated question (``generated``: [T][N] texts, ``image_ids``)

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ConfigError(f"--split must be one of {', '.join(SPLITS)} for a question-generation run")
        if self.images is not None and self.images < 1:
            raise ConfigError(f"--images must be >= 1, not {self.images}")
        check_samples(self.samples)


def evaluation_options(**options: Any) -> VQGEvaluationOptions:
    """The options of ``mumo evaluate`` for a VQG run; a VQA-only option that is set is refused."""
    for key, off in _VQA_ONLY.items():
        value = options.pop(key, off)
        if value not in (off, None) and not (isinstance(value, tuple | list) and not value):
            flag = "--" + key.replace("_", "-")
            raise ConfigError(f"{flag} is a VQA option; a question-generation run does not take it")
    for key in ("density_images", "question_bank"):
        options.pop(key, None)
    samples = options.pop("mc_samples", None)
    if samples is not None:
        options["samples"] = samples
    return VQGEvaluationOptions(**options)


@dataclass
class VQGReport:
    """Every figure of a question-generation run on a split."""

    figures: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.figures

    def lines(self) -> list[str]:
        f = self.figures
        out = [f"{f['images']} {f['split']} images, {f['samples']} samples each ({f['inference']}); cues: "
               + ", ".join(f"{k} {v}" for k, v in f["cue_sources"].items())]  # fmt: skip
        for name, s in f["caption_metrics"].items():
            if s["mean"] is None:
                out.append(f"  {name:8s} not computed: {f['missing_metrics'].get(name, '')}")
            else:
                out.append(f"  {name:8s} max {s['max']:.4f}  mean {s['mean']:.4f} ± {s['std']:.4f}")
        d = f["diversity"]
        out.append(f"  diversity: distinct-1 {d['distinct_1']:.3f}, distinct-2 {d['distinct_2']:.3f}, "
                   f"{d['distinct_per_image']:.2f} distinct questions per image")  # fmt: skip
        if "validity" in f:
            out.append(f"  valid {f['validity']:.4f}, answerable {f['answerability']:.4f} "
                       f"({f['bad_questions']} bad of {f['questions']})")  # fmt: skip
            for name, a in f["bad_question_auroc"].items():
                out.append(f"  AUROC of {name} for bad questions: " + ("n/a" if a is None else f"{a:.4f}"))
        out.append(f"  mean uncertainty: entropy {f['uncertainty']['entropy']:.4f}, epistemic "
                   f"{f['uncertainty']['epistemic']:.4f}; {f['seconds']:.1f}s")  # fmt: skip
        return out


def load_split(run_dir: str | Path, split: str, max_images: int | None) -> tuple[VQGSplit, VQGRunConfig]:
    """A split of the run's data set as tensors, with the run's own vocabulary."""
    run = Run(run_dir)
    cfg = run.config(VQGRunConfig)
    vocab, places, tag_words = read_vocab(run.path)
    n = max_images or cfg.data.max_eval_images
    records = read_records(cfg, split, n)
    return tensorize(split, records, vocab, places, tag_words, cfg), cfg


def evaluation_cues(model: VQGBMN, split: VQGSplit, idx: torch.Tensor, features: ImageFeatures | None) -> Cues:
    """The protocol's cues for images ``idx``: predicted place (true without the image), first caption, the first
    reference question's tags."""
    num_places = model.place_encoder[0].in_features if "place" in model.uses else 1
    place = None
    if "place" in model.uses:
        if features is not None:
            place = torch.softmax(model.heads(features)[0], 1)  # (B, P)
        else:
            place = one_hot_places(split.places[idx], num_places).to(split.images.device)
    return Cues(place=place, caption=split.captions[idx, 0], tags=split.question_tags[idx, 0])


def cue_sources(cfg: VQGRunConfig) -> dict[str, str]:
    cues = set(cfg.model.cues)
    out = {}
    if "place" in cues:
        out["place"] = "predicted by the place head" if "image" in cues else "true"
    if "caption" in cues:
        out["caption"] = "true (first caption)"
    if "tag" in cues:
        out["tag"] = "from the first reference question"
    return out or {"image": "only"}


def evaluate_vqg(run_dir: str | Path, options: VQGEvaluationOptions) -> VQGReport:
    """Generate T questions for every image of the split and score them (module docstring)."""
    from mumo.devices import resolve_device
    from mumo.metrics.captions import distinct_n, distinct_per_image, sample_scores

    t0 = time.perf_counter()
    device = resolve_device(options.device)
    model = load_vqg_model(run_dir, device=device)
    split, cfg = load_split(run_dir, options.split, options.images)
    vocab, _, _ = read_vocab(run_dir)
    decoding = Decoding(options.decoding.method, options.decoding.temperature, options.decoding.beam,
                        cfg.data.max_question_len)  # fmt: skip
    t, n = options.samples, len(split)
    texts: list[list[str]] = [[""] * n for _ in range(t)]  # [T][N]
    entropy, epistemic, surprise = torch.zeros(t, n), torch.zeros(t, n), torch.zeros(t, n)
    gates = []
    for start in range(0, n, options.batch_size):
        idx = torch.arange(start, min(start + options.batch_size, n))
        images = split.images[idx].float().to(device) / 255.0
        with torch.no_grad():
            features = model.image_features(images) if "image" in model.uses else None
            cues = evaluation_cues(model, split, idx, features)
            cues = Cues(*(c.to(device) if c is not None else None for c in cues))
        tokens, g = generate(model, features, cues, samples=t, mc=options.mc, decoding=decoding,
                             seed=options.seed + start)  # fmt: skip  # (T, B, L), (T, B, K)
        gates.append(g.cpu())
        for s in range(t):
            u = question_uncertainty(model, features, cues, tokens[s], samples=max(t, 2), seed=options.seed + 7 + s)
            entropy[s, idx], epistemic[s, idx], surprise[s, idx] = (u[k].cpu() for k in ("entropy", "epistemic",
                                                                                      "surprise"))  # fmt: skip
            for j, row in zip(idx.tolist(), tokens[s].tolist(), strict=True):
                texts[s][j] = detokenize(row, vocab)
    ids = [r.image_id for r in split.records]
    refs = {i: list(r.questions[: cfg.data.references]) for i, r in zip(ids, split.records, strict=True)}
    per_sample = [dict(zip(ids, texts[s], strict=True)) for s in range(t)]
    scored = sample_scores(per_sample, refs, meteor=options.meteor)
    flat = [q for s in texts for q in s]
    figures: dict[str, Any] = {
        "split": options.split, "images": n, "samples": t,
        "inference": f"{cfg.model.dropout_kind} dropout kept on at inference" if options.mc
                     else "dropout off at inference (MC-SMN)",
        "cues": list(cfg.model.cues), "cue_sources": cue_sources(cfg),
        "caption_metrics": scored.scores, "missing_metrics": scored.missing, "tokenizer": scored.tokenizer,
        "diversity": {"distinct_1": distinct_n(flat, 1), "distinct_2": distinct_n(flat, 2),
                      "distinct_per_image": distinct_per_image([[texts[s][j] for s in range(t)] for j in range(n)])},
        "uncertainty": {"entropy": float(entropy.mean()), "epistemic": float(epistemic.mean()),
                        "surprise": float(surprise.mean())},
        "moderator": dict(zip(cfg.model.experts, torch.cat(gates, 1).mean((0, 1)).tolist(), strict=True)),
        "decoding": options.decoding.method,
    }  # fmt: skip
    if split.records[0].scene is not None:
        figures.update(_scene_checks(split, texts, {"entropy": entropy, "epistemic": epistemic, "surprise": surprise}))
    figures["examples"] = [
        {"image_id": ids[j], "references": refs[ids[j]],
         "questions": [{"question": texts[s][j], "entropy": float(entropy[s, j]),
                        "epistemic": float(epistemic[s, j]), "surprise": float(surprise[s, j])} for s in range(t)]}
        for j in range(min(options.examples, n))
    ]  # fmt: skip
    if options.keep_questions:
        figures["generated"], figures["image_ids"] = texts, ids
        if split.records[0].scene is not None:
            figures["image_files"] = [str(r.image) for r in split.records]
    figures["seconds"] = time.perf_counter() - t0
    return VQGReport(figures)


def check_question(text: str, scene_record: dict) -> tuple[bool, bool]:
    """(valid, answerable): the scenes grammar parses the question, and its program executes on the scene graph."""
    from mumo.data.scenes.grammar import parse
    from mumo.data.scenes.graph import Scene
    from mumo.data.scenes.program import ProgramError, execute

    program = parse(text)
    if program is None:
        return False, False
    scene = Scene.from_graph(scene_record, image_size=int(scene_record["image_size"]))
    try:
        execute(program, scene)
    except ProgramError:
        return True, False
    return True, True


def _scene_checks(split: VQGSplit, texts: list[list[str]], scores: dict[str, torch.Tensor]) -> dict:
    from mumo.metrics.uncertainty import misclassification_auroc

    t, n = len(texts), len(split)
    valid, answerable = torch.zeros(t, n, dtype=torch.bool), torch.zeros(t, n, dtype=torch.bool)
    for s in range(t):
        for j in range(n):
            valid[s, j], answerable[s, j] = check_question(texts[s][j], split.records[j].scene)
    good = answerable.flatten()  # an unanswerable or invalid question is bad
    bad = int((~good).sum())
    aurocs: dict[str, float | None] = {}
    for name, score in scores.items():
        aurocs[name] = misclassification_auroc(score.flatten(), good) if 0 < bad < good.numel() else None
    out = {
        "validity": float(valid.float().mean()), "answerability": float(answerable.float().mean()),
        "questions": t * n, "bad_questions": bad, "bad_question_auroc": aurocs,
    }  # fmt: skip
    if bad < 30:
        out["note"] = f"only {bad} bad questions: too few for a reliable AUROC"
    return out
