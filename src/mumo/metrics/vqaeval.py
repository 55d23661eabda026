"""The official VQA accuracy (GT-Vision-Lab/VQA ``vqaEval.py``), in two versions.

``"2021"`` is the current official code (commit a013f00, "Fixed processing answers bug"): answers are
normalised only when the ground-truth answers of a question disagree, and then on both sides.
``"legacy"`` is the earlier code still copied in openvqa and LAVIS: the prediction is always normalised,
the ground truth only gets punctuation processing, and only when its answers disagree.

Per question, with normalised ground-truth answers g_1..g_n (n = 10 in VQA) and prediction r, each
annotator i is left out in turn: acc_i = min(1, #{j != i : g_j == r} / 3), and the score is the mean of
acc_i. k matching annotators out of 10 score 0.3, 0.6, 0.9 and 1.0 for k = 1, 2, 3 and >= 4.

The normalisation reproduces what the official code does, including its quirks: the punctuation tests
look at the original string, the period regex's look-behind is malformed (so only "not followed by a
digit" counts), and ``re.UNICODE`` is passed as the ``count`` argument, so at most 32 periods go.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from mumo.errors import MumoError

METRIC_VERSIONS = ("2021", "legacy")

# The 21 characters processPunctuation deletes or turns into a space ("'" and ":" are left alone).
_PUNCT = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!")
_COMMA_BETWEEN_DIGITS = re.compile(r"(\d)(,)(\d)")
_PERIOD_NOT_BEFORE_DIGIT = re.compile(r"\.(?!\d)")
_MAX_PERIODS_REMOVED = int(re.UNICODE)  # the official code passes re.UNICODE (32) as sub()'s count

_NUMBER_WORDS = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip
_ARTICLES = frozenset({"a", "an", "the"})

# The official 120-entry contraction table, as "key value" pairs. It is data and is kept verbatim,
# including its oddities: the capitalised keys (Im, Ive, Id've, I'dve) never match because words are
# lower-cased first, and "somebody'd" maps to "somebodyd".
_CONTRACTION_PAIRS = """
aint ain't  arent aren't  cant can't  couldve could've  couldnt couldn't  couldn'tve couldn't've
couldnt've couldn't've  didnt didn't  doesnt doesn't  dont don't  hadnt hadn't  hadnt've hadn't've
hadn'tve hadn't've  hasnt hasn't  havent haven't  hed he'd  hed've he'd've  he'dve he'd've  hes he's
howd how'd  howll how'll  hows how's  Id've I'd've  I'dve I'd've  Im I'm  Ive I've  isnt isn't  itd it'd
itd've it'd've  it'dve it'd've  itll it'll  let's let's  maam ma'am  mightnt mightn't
mightnt've mightn't've  mightn'tve mightn't've  mightve might've  mustnt mustn't  mustve must've
neednt needn't  notve not've  oclock o'clock  oughtnt oughtn't  ow's'at 'ow's'at  'ows'at 'ow's'at
'ow'sat 'ow's'at  shant shan't  shed've she'd've  she'dve she'd've  she's she's  shouldve should've
shouldnt shouldn't  shouldnt've shouldn't've  shouldn'tve shouldn't've  somebody'd somebodyd
somebodyd've somebody'd've  somebody'dve somebody'd've  somebodyll somebody'll  somebodys somebody's
someoned someone'd  someoned've someone'd've  someone'dve someone'd've  someonell someone'll
someones someone's  somethingd something'd  somethingd've something'd've  something'dve something'd've
somethingll something'll  thats that's  thered there'd  thered've there'd've  there'dve there'd've
therere there're  theres there's  theyd they'd  theyd've they'd've  they'dve they'd've  theyll they'll
theyre they're  theyve they've  twas 'twas  wasnt wasn't  wed've we'd've  we'dve we'd've  weve we've
werent weren't  whatll what'll  whatre what're  whats what's  whatve what've  whens when's
whered where'd  wheres where's  whereve where've  whod who'd  whod've who'd've  who'dve who'd've
wholl who'll  whos who's  whove who've  whyll why'll  whyre why're  whys why's  wont won't
wouldve would've  wouldnt wouldn't  wouldnt've wouldn't've  wouldn'tve wouldn't've  yall y'all
yall'll y'all'll  y'allll y'all'll  yall'd've y'all'd've  y'alld've y'all'd've  y'all'dve y'all'd've
youd you'd  youd've you'd've  you'dve you'd've  youll you'll  youre you're  youve you've
""".split()  # noqa: SIM905 (a literal list of 240 strings would be far less readable)
CONTRACTIONS: dict[str, str] = dict(zip(_CONTRACTION_PAIRS[::2], _CONTRACTION_PAIRS[1::2], strict=True))


def process_punctuation(s: str) -> str:
    """The official ``processPunctuation``.

    Each of the 21 punctuation characters is deleted when it touches a space somewhere in ``s`` (``p + " "``
    or ``" " + p``) or when ``s`` holds a comma between digits anywhere; otherwise it becomes a space. Both
    tests look at the original ``s``. Then every ``.`` not followed by a digit is deleted (at most 32).
    """
    digit_comma_digit = _COMMA_BETWEEN_DIGITS.search(s) is not None
    out = s
    for p in _PUNCT:
        touches_space = p + " " in s or " " + p in s
        out = out.replace(p, "" if touches_space or digit_comma_digit else " ")
    return _PERIOD_NOT_BEFORE_DIGIT.sub("", out, count=_MAX_PERIODS_REMOVED)


def process_digit_article(s: str) -> str:
    """The official ``processDigitArticle``: lowercase, split on whitespace, number words to digits
    (none, zero..ten), drop the articles a/an/the, restore apostrophes from the contraction table, join
    with single spaces."""
    words = [_NUMBER_WORDS.get(w, w) for w in s.lower().split()]
    return " ".join(CONTRACTIONS.get(w, w) for w in words if w not in _ARTICLES)


def _clean_whitespace(s: str) -> str:
    return s.replace("\n", " ").replace("\t", " ").strip()


def check_version(version: str) -> str:
    """Return ``version`` if it names a metric version, else raise MumoError."""
    if version not in METRIC_VERSIONS:
        raise MumoError(f"unknown VQA metric version {version!r}; choose one of: {', '.join(METRIC_VERSIONS)}")
    return version


def vqa_accuracy(prediction: str, gt_answers: Sequence[str], version: str = "2021") -> float:
    """Official VQA accuracy of one predicted answer against the annotators' answers.

    Args:
        prediction: the predicted answer, raw.
        gt_answers: the annotators' raw answers (10 in VQA v2).
        version: ``"2021"`` (current official code) or ``"legacy"`` (openvqa / LAVIS copies).

    Returns:
        The leave-one-annotator-out average of min(1, matches / 3), in [0, 1].
    """
    check_version(version)
    if not gt_answers:
        raise MumoError("a question has no ground-truth answers")
    r = _clean_whitespace(prediction)
    if version == "2021":
        gts = [_clean_whitespace(a) for a in gt_answers]
        if len(set(gts)) > 1:
            gts = [process_digit_article(process_punctuation(a)) for a in gts]
            r = process_digit_article(process_punctuation(r))
    else:
        r = process_digit_article(process_punctuation(r))
        gts = list(gt_answers)
        if len(set(gts)) > 1:
            gts = [process_punctuation(a) for a in gts]
    matches = [g == r for g in gts]
    total = sum(matches)
    # leaving annotator i out removes exactly one entry, so the others match total - matches[i] times
    return sum(min(1.0, (total - m) / 3) for m in matches) / len(gts)


def _require(obj: Any, key: str, role: str, where: str = "") -> Any:
    if not isinstance(obj, Mapping) or key not in obj:
        raise MumoError(f"{role} file: missing key {key!r}{where}")
    return obj[key]


def _require_list(obj: Any, key: str, role: str) -> list:
    value = _require(obj, key, role)
    if not isinstance(value, list):
        raise MumoError(f"{role} file: {key!r} must be a list, not {type(value).__name__}")
    return value


def _question_id(obj: Any, role: str, where: str) -> int | str:
    qid = _require(obj, "question_id", role, where)
    if isinstance(qid, bool) or not isinstance(qid, int | str):
        text = repr(qid)  # a whole list or object would make the one-line error a page long
        shown = text if len(text) <= 40 else f"{text[:40]}... (a {type(qid).__name__})"
        raise MumoError(f"{role} file: 'question_id' must be an integer{where}, not {shown}")
    return qid


def _examples(ids: set) -> str:
    shown = sorted(ids, key=str)[:5]
    return ", ".join(map(str, shown)) + (", ..." if len(ids) > len(shown) else "")


def evaluate_results(
    questions: Mapping[str, Any],
    annotations: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    version: str = "2021",
) -> dict[str, Any]:
    """Score a VQA results file the way the official evaluation does.

    Args:
        questions: the parsed questions file, ``{"questions": [{"question_id", "image_id", "question"}]}``.
        annotations: the parsed annotations file, ``{"annotations": [{"question_id", "answer_type",
            "question_type", "answers": [{"answer"}], ...}]}``.
        results: the parsed results file, ``[{"question_id": int, "answer": str}]``; like the official
            loader, its question ids must be exactly those of the annotations.
        version: ``"2021"`` or ``"legacy"``.

    Returns:
        ``accuracy`` (fraction in [0, 1]), ``accuracy_by_type`` (per answer type),
        ``accuracy_by_question_type``, ``num_questions`` and ``metric_version``.
    """
    check_version(version)
    question_ids: set = set()
    for i, q in enumerate(_require_list(questions, "questions", "questions")):
        question_ids.add(_question_id(q, "questions", f" in question #{i}"))

    anns: dict = {}
    for i, ann in enumerate(_require_list(annotations, "annotations", "annotations")):
        where = f" in annotation #{i}"
        qid = _question_id(ann, "annotations", where)
        if qid in anns:
            raise MumoError(f"annotations file: question {qid} is annotated more than once")
        answers = _require(ann, "answers", "annotations", where)
        if not isinstance(answers, list) or not answers:
            raise MumoError(f"annotations file: 'answers' must be a non-empty list{where}")
        gt = [_require(a, "answer", "annotations", f" in an answer{where}") for a in answers]
        if not all(isinstance(a, str) for a in gt):
            raise MumoError(f"annotations file: every 'answer' must be a string{where}")
        anns[qid] = {
            "answer_type": str(_require(ann, "answer_type", "annotations", where)),
            "question_type": str(_require(ann, "question_type", "annotations", where)),
            "answers": gt,
        }
    if not anns:
        raise MumoError("annotations file: no annotations to score")
    if set(anns) != question_ids:
        raise MumoError(
            f"the questions and annotations files do not match: {len(set(anns) - question_ids)} annotated "
            f"questions are not in the questions file, {len(question_ids - set(anns))} questions have no annotation"
        )

    if not isinstance(results, list):
        raise MumoError(f"results file: must be a JSON list of {{question_id, answer}}, not {type(results).__name__}")
    preds: dict = {}
    for i, res in enumerate(results):
        where = f" in result #{i}"
        qid = _question_id(res, "results", where)
        answer = _require(res, "answer", "results", where)
        if not isinstance(answer, str):
            raise MumoError(f"results file: 'answer' must be a string{where}")
        if qid in preds:
            raise MumoError(f"results file: question {qid} is answered more than once")
        preds[qid] = answer
    missing, extra = set(anns) - set(preds), set(preds) - set(anns)
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} annotated questions have no result (e.g. {_examples(missing)})")
        if extra:
            parts.append(f"{len(extra)} results are for questions not in the annotations (e.g. {_examples(extra)})")
        raise MumoError("results file does not cover exactly the annotated questions: " + "; ".join(parts))

    scores: list[float] = []
    by_type: dict[str, list[float]] = defaultdict(list)
    by_qtype: dict[str, list[float]] = defaultdict(list)
    for qid, ann in anns.items():
        acc = vqa_accuracy(preds[qid], ann["answers"], version)
        scores.append(acc)
        by_type[ann["answer_type"]].append(acc)
        by_qtype[ann["question_type"]].append(acc)
    return {
        "accuracy": sum(scores) / len(scores),
        "accuracy_by_type": {k: sum(v) / len(v) for k, v in by_type.items()},
        "accuracy_by_question_type": {k: sum(v) / len(v) for k, v in by_qtype.items()},
        "num_questions": len(scores),
        "metric_version": version,
    }
