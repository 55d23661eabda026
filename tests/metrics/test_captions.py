"""Caption metrics: parity with coco-caption's example, the Java-free path, input errors, diversity, MC samples."""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from pathlib import Path

import pytest

from mumo.errors import MumoError
from mumo.metrics import captions
from mumo.metrics.captions import (
    JAVA_MISSING,
    METRICS,
    caption_scores,
    distinct_n,
    distinct_per_image,
    java_available,
    sample_scores,
    simple_tokenize,
    tokenize,
)

EXAMPLE = Path(__file__).parents[1] / "fixtures" / "coco_caption_example"
needs_java = pytest.mark.skipif(not java_available(), reason="Java is not installed (METEOR, PTB tokenizer)")

# Questions and captions with what the PTB tokenizer treats specially: "?", commas, apostrophes and clitics, hyphens,
# quotes, brackets, numbers, abbreviations, ellipses.
VARIED = [
    "What colour is the man's shirt?",
    "Is it raining, or isn't it?",
    "How many black-and-white cats are there?",
    "Don't you think it's 3.5 or 1,000 meters... away?",
    "He can't, won't and cannot go -- said Mr. Smith in the U.S.",
    "\"Quoted\" and 'single' \u201ccurly\u201d (paren) [bracket] {brace}",
    "What's the dog's name?!",
    "Is this a 4-way stop sign at 10:30am, 5pm or 2:30?",
    "How many people are in the photo (including the photographer)?",
    "The kids' toys are on the floor; they're red.",
    'What does the sign say: "stop" or "go"?',
    "Is the pizza cut into 8 slices e.g. for 50% of them?",
    "A young baseball player getting ready to bat.,",
    "what is he holding in his right hand ?",
    "Is there a T-shirt, a hat & a 5 1/2 inch bag?",
    "Where is plan b.",
    "The answer is no.",
]


def _example() -> tuple[dict[int, str], dict[int, list[str]]]:
    with gzip.open(EXAMPLE / "captions_val2014_fakecap_results.json.gz", "rt", encoding="utf-8") as f:
        results = json.load(f)
    with gzip.open(EXAMPLE / "captions_val2014_references.json.gz", "rt", encoding="utf-8") as f:
        annotations = json.load(f)["annotations"]
    candidates = {r["image_id"]: r["caption"] for r in results}
    references: dict[int, list[str]] = defaultdict(list)
    for a in annotations:
        references[a["image_id"]].append(a["caption"])
    return candidates, {k: references[k] for k in candidates}  # the demo's order: the results' images


@pytest.fixture(scope="module")
def example() -> tuple[dict[int, str], dict[int, list[str]]]:
    return _example()


@pytest.fixture(scope="module")
def java_scores(example):
    if not java_available():
        pytest.skip("Java is not installed (METEOR, PTB tokenizer)")
    return caption_scores(*example)


def _no_java(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(captions, "java_available", lambda: False)


# ------------------------------------------------------------------------------------------------ parity


def test_example_fixture_is_the_demo_split(example):
    candidates, references = example
    assert len(candidates) == 1000
    assert sum(len(r) for r in references.values()) == 5005


def test_parity_with_coco_caption_demo(java_scores):
    """coco-caption's cocoEvalCapDemo prints these for its fake captions (and salaniz/pycocoevalcap#25)."""
    s = java_scores.scores
    assert java_scores.missing == {}
    assert java_scores.tokenizer == "ptb-java"
    assert java_scores.n == 1000
    assert round(s["BLEU-1"], 3) == 0.579
    assert round(s["METEOR"], 3) == 0.195
    assert round(s["ROUGE-L"], 3) == 0.396
    assert round(s["CIDEr"], 3) == 0.600
    assert [round(s[f"BLEU-{n}"], 3) for n in (2, 3, 4)] == [0.404, 0.279, 0.191]
    assert list(java_scores.to_dict()["scores"]) == list(METRICS)


# ------------------------------------------------------------------------------------------------ without Java


def test_without_java_meteor_is_missing_and_the_rest_equal(example, java_scores, monkeypatch):
    _no_java(monkeypatch)
    scores = caption_scores(*example)
    assert scores.tokenizer == "simple"
    assert scores.scores["METEOR"] is None
    assert scores.missing == {"METEOR": JAVA_MISSING}
    assert "apt-get install -y default-jre-headless" in JAVA_MISSING and "\n" not in JAVA_MISSING
    for metric in ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr"):
        # the fallback tokenizer gives the Java one's tokens on every sentence of the example, so the scores agree
        assert scores.scores[metric] == pytest.approx(java_scores.scores[metric], abs=1e-9)


def test_without_java_on_path(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no java
    assert not java_available()
    scores = caption_scores({1: "a red bus ."}, {1: ["A red bus.", "A bus."]})
    assert scores.missing == {"METEOR": JAVA_MISSING}
    assert scores.scores["BLEU-1"] == pytest.approx(1.0)
    with pytest.raises(MumoError, match="default-jre-headless"):
        tokenize({1: ["a"]}, java=True)


def test_meteor_off_is_reported_missing():
    scores = caption_scores({1: "a cat", 2: "a dog"}, {1: ["a cat"], 2: ["the dog"]}, meteor=False)
    assert scores.scores["METEOR"] is None
    assert "meteor=False" in scores.missing["METEOR"]


@needs_java
def test_fallback_tokenizer_equals_java_on_varied_sentences():
    texts = {i: [s] for i, s in enumerate(VARIED)}
    assert tokenize(texts, java=False) == tokenize(texts, java=True)


@needs_java
def test_fallback_tokenizer_equals_java_on_the_example(example):
    candidates, references = example
    texts = {k: [candidates[k], *references[k]] for k in candidates}
    assert tokenize(texts, java=False) == tokenize(texts, java=True)


def test_simple_tokenize_examples():
    assert simple_tokenize("What colour is the man's shirt?") == "what colour is the man 's shirt"
    assert simple_tokenize("Isn't it black-and-white, Mr. Smith?") == "is n't it black-and-white mr. smith"
    assert simple_tokenize("He cannot (really) go...") == "he can not -lrb- really -rrb- go"  # PTB's quirk: kept
    assert simple_tokenize("?!") == "?!" and simple_tokenize("?") == ""
    assert simple_tokenize("line\none") == "line one"


# ------------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("candidates", "references", "match"),
    [
        ({}, {1: ["a"]}, "no candidates"),
        ({1: "a"}, {}, "no references"),
        ({1: "a", 2: "b"}, {1: ["a"]}, r"have no references: 2"),
        ({1: "a"}, {1: ["a"], 2: ["b"]}, r"1 references key\(s\) are missing from candidates: 2"),
        ({1: "a"}, {1: []}, r"references\[1\] is empty"),
        ({1: 3}, {1: ["a"]}, r"candidates\[1\] is a int"),
        ({1: "a"}, {1: ["a", None]}, r"references\[1\] holds a NoneType"),
        ({1: "a"}, {1: "a"}, r"references\[1\] must be a list"),
        (["a"], {1: ["a"]}, "candidates must be a dict"),
    ],
)
def test_input_errors(candidates, references, match):
    with pytest.raises(MumoError, match=match):
        caption_scores(candidates, references, meteor=False)


def test_mismatched_keys_are_named_a_few_at_a_time():
    refs = {i: ["a"] for i in range(3)}
    with pytest.raises(MumoError, match=r"7 candidates key\(s\) have no references: 3, 4, 5, 6, 7 and 2 more"):
        caption_scores({i: "a" for i in range(10)}, refs, meteor=False)


def test_sample_errors():
    with pytest.raises(MumoError, match="no samples"):
        sample_scores([], {1: ["a"]}, meteor=False)
    with pytest.raises(MumoError, match=r"samples\[1\] key\(s\) have no references: 2"):
        sample_scores([{1: "a"}, {1: "a", 2: "b"}], {1: ["a"]}, meteor=False)
    with pytest.raises(MumoError, match="list of dicts"):
        sample_scores({1: "a"}, {1: ["a"]}, meteor=False)


# ------------------------------------------------------------------------------------------------ diversity


def test_distinct_n():
    assert distinct_n(["a b c", "a b d"], 1) == pytest.approx(4 / 6)
    assert distinct_n(["a b c", "a b d"], 2) == pytest.approx(3 / 4)  # (a b) twice, (b c), (b d)
    assert distinct_n(["What is it?", "what is it"], 1) == pytest.approx(3 / 6)  # case and "?" do not count
    assert distinct_n(["a", "b"], 2) == 0.0  # no bigram
    assert distinct_n([], 1) == 0.0
    assert distinct_n(["a b c d"], 4) == 1.0
    with pytest.raises(MumoError, match="n must be"):
        distinct_n(["a"], 0)
    with pytest.raises(MumoError, match="not one string"):
        distinct_n("a b", 1)


def test_distinct_per_image():
    assert distinct_per_image([["a", "a", "a"], ["a", "b", "c"]]) == pytest.approx(2.0)
    assert distinct_per_image([["x"]]) == 1.0
    with pytest.raises(MumoError, match="no images"):
        distinct_per_image([])
    with pytest.raises(MumoError, match="non-empty"):
        distinct_per_image([["a"], []])


# ------------------------------------------------------------------------------------------------ MC samples

REFS = {
    1: ["what color is the bus?", "is the bus red?"],
    2: ["how many dogs are there?", "what animal is this?"],
    3: ["is it raining?", "what is the weather like?"],
}
GOOD = {1: "what color is the bus?", 2: "how many dogs are there?", 3: "is it sunny?"}
BAD = {1: "where is the man?", 2: "what is this?", 3: "is the man happy?"}


def test_sample_scores_identical_samples_have_no_spread(monkeypatch):
    _no_java(monkeypatch)  # fast: no jar
    scored = sample_scores([GOOD, dict(GOOD), dict(GOOD)], REFS)
    single = caption_scores(GOOD, REFS)
    assert scored.missing == {"METEOR": JAVA_MISSING} and scored.n == 3
    for metric in ("BLEU-1", "BLEU-4", "ROUGE-L", "CIDEr"):
        s = scored.scores[metric]
        assert s["per_sample"] == [single.scores[metric]] * 3
        assert s["max"] == single.scores[metric]
        assert s["mean"] == pytest.approx(s["max"], abs=1e-12) and s["std"] == pytest.approx(0.0, abs=1e-12)
    assert scored.scores["METEOR"] == {"max": None, "mean": None, "std": None, "per_sample": [None] * 3}
    json.dumps(scored.to_dict())


def test_sample_scores_summary(monkeypatch):
    _no_java(monkeypatch)
    scored = sample_scores([GOOD, BAD], REFS, meteor=False)
    for metric in ("BLEU-1", "ROUGE-L", "CIDEr"):
        s = scored.scores[metric]
        good, bad = caption_scores(GOOD, REFS).scores[metric], caption_scores(BAD, REFS).scores[metric]
        assert s["per_sample"] == [good, bad] and good > bad
        assert s["max"] == good >= s["mean"] == pytest.approx((good + bad) / 2)
        assert s["std"] == pytest.approx(abs(good - bad) / 2)  # population std of two values


@needs_java
def test_sample_scores_run_one_meteor_for_all_samples(monkeypatch):
    from pycocoevalcap.meteor import meteor as meteor_module

    started = []

    class CountingMeteor(meteor_module.Meteor):
        def __init__(self):
            super().__init__()
            started.append(self)

    monkeypatch.setattr(meteor_module, "Meteor", CountingMeteor)
    scored = sample_scores([GOOD, BAD, GOOD], REFS)
    assert len(started) == 1
    assert started[0].meteor_p.poll() is not None  # the jar was stopped
    m = scored.scores["METEOR"]["per_sample"]
    assert m[0] == m[2] > m[1] and scored.missing == {}
    assert scored.tokenizer == "ptb-java"
