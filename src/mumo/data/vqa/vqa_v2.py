"""VQA v2 in its official formats (reference §1.4), as a :class:`~mumo.data.vqa.split.VQASplit`.

Layout under ``root`` (``{split}`` is ``train`` or ``val`` with year 2014; ``test`` uses year 2015 and has no
annotations file)::

    v2_OpenEnded_mscoco_{split}{year}_questions.json   {"questions": [{"question_id", "image_id", "question"}]}
    v2_mscoco_{split}{year}_annotations.json           {"annotations": [{"question_id", "image_id", "answer_type",
                                                        "multiple_choice_answer", "answers": [{"answer"}] x 10}]}
    images/{split}{year}/COCO_{split}{year}_{image_id:012d}.jpg      pixels (image_encoder="cnn"), or
    features/{split}{year}/{image_id}.npz                            bottom-up features (image_encoder="regions"):
                                                                     key "x", float (D, N), N <= max_regions

Features are transposed to (N, D) and zero-padded to ``max_regions`` rows (zero rows are masked by the model).

Answers are normalised as in MCAN (``core/data/ans_punct.py``): the official processPunctuation and
processDigitArticle, then commas deleted. The answer list holds the normalised ``multiple_choice_answer`` seen
*more than* ``min_answer_count`` times in the training split, most frequent first (ties alphabetical); this is not
MCAN's frozen ``answer_dict.json`` ordering, so published MCAN weights do not load against it. A question's
soft target for an answer given by k of its annotators is :data:`SOFT_SCORES` [k] (1.0 for k >= 4); answers
outside the list contribute nothing, so a question may keep an all-zero target (counted in the report).

Questions are stored grouped by image (images in order of first appearance, questions in file order within
an image), so the question ids of any split carved *by image* follow from its ``image_ids``
(:func:`split_question_ids`).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mumo.data._output import read_json
from mumo.data.images import load_image
from mumo.data.text import Vocab
from mumo.data.vqa.split import VQASplit
from mumo.errors import MumoError
from mumo.metrics.vqaeval import process_digit_article, process_punctuation

SPLITS = {"train": "train2014", "val": "val2014", "test": "test2015"}
SOFT_SCORES = (0.0, 0.3, 0.6, 0.9, 1.0)  # k = 0, 1, 2, 3, >= 4 annotators (MCAN get_score)
ANSWER_TYPES = ("yes/no", "number", "other")


def normalize_answer(answer: str) -> str:
    """MCAN's ``prep_ans``: official punctuation and digit/article rules, then commas deleted."""
    return process_digit_article(process_punctuation(answer)).replace(",", "")


def soft_score(count: int) -> float:
    """Soft target of an answer given by ``count`` of the 10 annotators."""
    return SOFT_SCORES[min(count, 4)]


def questions_file(root: Path, split: str) -> Path:
    return Path(root) / f"v2_OpenEnded_mscoco_{SPLITS[split]}_questions.json"


def annotations_file(root: Path, split: str) -> Path:
    return Path(root) / f"v2_mscoco_{SPLITS[split]}_annotations.json"


def image_file(root: Path, split: str, image_id: int) -> Path:
    s = SPLITS[split]
    return Path(root) / "images" / s / f"COCO_{s}_{image_id:012d}.jpg"


def feature_file(root: Path, split: str, image_id: int) -> Path:
    return Path(root) / "features" / SPLITS[split] / f"{image_id}.npz"


def has_split(root: str | Path, split: str) -> bool:
    """Whether both the questions and the annotations file of ``split`` exist."""
    return questions_file(Path(root), split).is_file() and annotations_file(Path(root), split).is_file()


def _read_json(path: Path, key: str) -> list[dict]:
    obj = read_json(path, "VQA v2")
    if not isinstance(obj, dict) or not isinstance(obj.get(key), list):
        raise MumoError(f"{path} has no {key!r} list")
    return obj[key]


def _field(item: Any, key: str, path: Path, i: int) -> Any:
    if not isinstance(item, dict) or key not in item:
        raise MumoError(f"{path}: entry {i} has no {key!r} field")
    return item[key]


def _read_questions(root: Path, split: str) -> list[tuple[int, int, str]]:
    """(question_id, image_id, question) in file order."""
    path = questions_file(root, split)
    out = []
    for i, q in enumerate(_read_json(path, "questions")):
        qid, image_id, text = (_field(q, k, path, i) for k in ("question_id", "image_id", "question"))
        out.append((int(qid), int(image_id), str(text)))
    return out


def _read_annotations(root: Path, split: str, question_ids: list[int]) -> list[tuple[str, str, list[str]]]:
    """(answer_type, normalised multiple_choice_answer, normalised answers), in the order of ``question_ids``."""
    path = annotations_file(root, split)
    by_id = {}
    for i, a in enumerate(_read_json(path, "annotations")):
        qid = int(_field(a, "question_id", path, i))
        answers = _field(a, "answers", path, i)
        if not isinstance(answers, list):
            raise MumoError(f"{path}: entry {i} field 'answers' is not a list")
        by_id[qid] = (
            str(_field(a, "answer_type", path, i)),
            normalize_answer(str(_field(a, "multiple_choice_answer", path, i))),
            [normalize_answer(str(_field(x, "answer", path, i))) for x in answers],
        )
    missing, extra = set(question_ids) - set(by_id), set(by_id) - set(question_ids)
    if missing or extra:
        raise MumoError(
            f"question ids differ between {questions_file(root, split).name} and {path.name}: "
            f"{len(missing)} without annotation (e.g. {sorted(missing)[:3]}), "
            f"{len(extra)} without question (e.g. {sorted(extra)[:3]})"
        )
    return [by_id[q] for q in question_ids]


def _load_features(root: Path, split: str, image_ids: list[int], max_regions: int) -> torch.Tensor:
    """(I, max_regions, D) float32, zero-padded."""
    out, dim = [], None
    for image_id in image_ids:
        path = feature_file(root, split, image_id)
        if not path.is_file():
            raise MumoError(f"feature file not found: {path}")
        try:
            with np.load(path) as npz:
                if "x" not in npz.files:
                    raise MumoError(f"feature file {path} has no key 'x' (keys: {', '.join(npz.files)})")
                x = npz["x"]
        except (OSError, ValueError) as exc:
            raise MumoError(f"cannot read feature file {path}: {exc}") from None
        want = f"({dim if dim is not None else 'D'}, N) float with 1 <= N <= {max_regions}"
        ok_shape = x.ndim == 2 and 1 <= x.shape[1] <= max_regions and (dim is None or x.shape[0] == dim)
        if not ok_shape or not np.issubdtype(x.dtype, np.floating):
            raise MumoError(f"feature file {path} holds {x.dtype} {tuple(x.shape)}; expected {want}")
        dim = x.shape[0]
        padded = np.zeros((max_regions, dim), dtype=np.float32)
        padded[: x.shape[1]] = x.T  # (N, D)
        out.append(padded)
    if not out:
        return torch.zeros(0, max_regions, 1)
    return torch.from_numpy(np.stack(out))


def _load_images(root: Path, split: str, image_ids: list[int], image_size: int) -> torch.Tensor:
    """(I, 3, H, W) uint8."""
    out = []
    for image_id in image_ids:
        path = image_file(root, split, image_id)
        if not path.is_file():
            raise MumoError(f"image file not found: {path}")
        out.append(load_image(path, size=image_size))
    if not out:
        return torch.zeros(0, 3, image_size, image_size, dtype=torch.uint8)
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()


def build_answers(normalised_mc_answers: list[str], min_answer_count: int = 8) -> list[str]:
    """Answers seen more than ``min_answer_count`` times, most frequent first (ties alphabetical)."""
    counts = Counter(normalised_mc_answers)
    return sorted((a for a, c in counts.items() if c > min_answer_count), key=lambda a: (-counts[a], a))


def load_vqa_v2(
    root: str | Path,
    *,
    split: str,
    features: bool,
    vocab: Vocab | None = None,
    answers: list[str] | None = None,
    max_question_len: int = 14,
    image_size: int = 64,
    max_regions: int = 100,
    min_answer_count: int = 8,
) -> tuple[VQASplit, Vocab, list[str], dict[str, Any]]:
    """Load one split of VQA v2 from the official files.

    Args:
        root: directory in the layout of this module's docstring.
        split: ``train``, ``val`` or ``test`` (questions only: all-zero targets, type ``unknown``).
        features: read ``features/`` (region features, (I, max_regions, D)) instead of ``images/`` (pixels).
        vocab: token vocabulary; None builds one from this split's questions (pass train's to the others).
        answers: answer list; None builds one from this split's ``multiple_choice_answer``s.
        max_question_len: tokens per question.
        image_size: images are resized to this square size.
        max_regions: features are zero-padded to this many regions; more is an error.
        min_answer_count: an answer enters the list when seen more than this many times.

    Returns:
        (split, vocab, answers, report); report counts questions, images, ``unanswerable`` questions
        (no annotator answer in the list: all-zero target) and ``answers_out_of_list`` (annotator answers
        dropped), and holds ``question_ids`` in the split's question order.

    Raises:
        MumoError: missing or malformed file or field, question ids that differ between the questions and
            annotations files, a missing image or feature file, a feature file of the wrong shape or dtype.
    """
    if split not in SPLITS:
        raise MumoError(f"VQA v2 split must be one of {', '.join(SPLITS)}, not {split!r}")
    root = Path(root)
    qs = _read_questions(root, split)
    # group by image: images in order of first appearance, questions in file order within an image
    image_ids = list(dict.fromkeys(image_id for _, image_id, _ in qs))
    row = {image_id: i for i, image_id in enumerate(image_ids)}
    qs = sorted(qs, key=lambda q: row[q[1]])  # stable
    question_ids = [q[0] for q in qs]
    if len(set(question_ids)) != len(question_ids):
        raise MumoError(f"{questions_file(root, split)} repeats question ids")
    texts = [q[2] for q in qs]
    annotated = split != "test"
    anns = _read_annotations(root, split, question_ids) if annotated else []
    if answers is None:
        if not annotated:
            raise MumoError("the VQA v2 test split has no annotations: pass the training split's answers")
        answers = build_answers([mc for _, mc, _ in anns], min_answer_count)
    if vocab is None:
        vocab = Vocab.build(texts)
    answer_index = {a: i for i, a in enumerate(answers)}
    targets = torch.zeros(len(qs), len(answers))  # (Q, C)
    dropped = 0
    for i, (_, _, given) in enumerate(anns):
        for a, k in Counter(given).items():
            if a in answer_index:
                targets[i, answer_index[a]] = soft_score(k)
            else:
                dropped += k
    images = (
        _load_features(root, split, image_ids, max_regions)
        if features
        else _load_images(root, split, image_ids, image_size)
    )
    out = VQASplit(
        name=split,
        images=images,
        tokens=vocab.encode_batch(texts, max_question_len),
        image_index=torch.tensor([row[q[1]] for q in qs], dtype=torch.long),
        targets=targets,
        questions=texts,
        question_types=[t for t, _, _ in anns] if annotated else ["unknown"] * len(qs),
        image_ids=image_ids,
    )
    report = {
        "split": split,
        "num_questions": len(qs),
        "num_images": len(image_ids),
        "unanswerable": int((targets.sum(1) == 0).sum()) if annotated else 0,
        "answers_out_of_list": dropped,
        "question_ids": question_ids,
    }
    return out, vocab, list(answers), report


def split_question_ids(root: str | Path, split: VQASplit) -> list[int]:
    """The VQA v2 question ids of a split loaded by :func:`load_vqa_v2` or carved from one by image.

    Reads the questions files present under ``root`` (COCO image ids are unique across splits) and checks the
    question texts against the split's.
    """
    by_image: dict[int, list[tuple[int, str]]] = {}
    for s in SPLITS:
        if questions_file(Path(root), s).is_file():
            for qid, image_id, text in _read_questions(Path(root), s):
                by_image.setdefault(image_id, []).append((qid, text))
    pairs = [p for image_id in split.image_ids for p in by_image.get(image_id, [])]
    if [t for _, t in pairs] != split.questions:
        raise MumoError(f"the questions files under {root} no longer match the {split.name} split")
    return [qid for qid, _ in pairs]


def results_records(question_ids: list[int], indices: torch.Tensor, logits: torch.Tensor, answers: list[str]) -> list:
    """The official results list ``[{"question_id", "answer"}]`` from logits (n, C) of questions ``indices``."""
    best = logits.argmax(1).tolist()
    return [
        {"question_id": int(question_ids[i]), "answer": answers[b]}
        for i, b in sorted(zip(indices.tolist(), best, strict=True))
    ]
