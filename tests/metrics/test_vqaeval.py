"""The official VQA accuracy, both versions: hand-worked normalisation and scoring cases."""

from __future__ import annotations

import copy

import pytest

from mumo.errors import MumoError
from mumo.metrics.vqaeval import (
    CONTRACTIONS,
    evaluate_results,
    process_digit_article,
    process_punctuation,
    vqa_accuracy,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("100,978", "100978"),  # comma between digits: deleted, no space
        ("1,000 x-ray", "1000 xray"),  # a digit-comma-digit anywhere deletes every punctuation mark
        ("2.5", "2.5"),  # a period before a digit survives
        ("yes.", "yes"),
        ("a...", "a"),
        ("...5", ".5"),  # only the period followed by a digit is kept
        ("black/white", "black white"),  # touches no space: replaced by a space
        ("(red)", " red "),
        ("hello!", "hello "),
        ("yes, no", "yes no"),  # ", " occurs: deleted
        ("black / white", "black  white"),
        ("a-b c -d", "ab c d"),  # " -" occurs once, so every "-" is deleted (test on the original string)
        ("x-y, z-w", "x y z w"),  # each character decides on its own: "," touches a space, "-" does not
        ("don't", "don't"),  # apostrophe untouched
        ("2:50", "2:50"),  # colon untouched
        ("#1 $5 50% a&b a*b", "#1 $5 50% a&b a*b"),  # not among the 21 characters
        (
            '"quoted"; [x] {y} a=b a+b a\\b a_b a>b a<b a@b a`b why?',
            " quoted  x y a b a b a b a b a b a b a b a b why ",
        ),
        ("", ""),
    ],
)
def test_process_punctuation(raw, expected):
    assert process_punctuation(raw) == expected


def test_process_punctuation_removes_at_most_32_periods():
    # the official code passes re.UNICODE (32) as re.sub's count
    assert process_punctuation("." * 40 + "a") == "." * 8 + "a"
    assert process_punctuation("." * 32) == ""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Two Dogs", "2 dogs"),
        ("none", "0"),
        ("zero", "0"),
        ("one two three four five six seven eight nine ten", "1 2 3 4 5 6 7 8 9 10"),
        ("eleven", "eleven"),  # only none, zero..ten
        ("a dog", "dog"),
        ("The An A", ""),
        ("another", "another"),
        ("dont know", "don't know"),
        ("isnt", "isn't"),
        ("Whats", "what's"),
        ("Im", "im"),  # capitalised table keys never match: words are lower-cased first
        ("somebody'd", "somebodyd"),  # the table's own oddity
        ("  lots \t of\n space ", "lots of space"),
    ],
)
def test_process_digit_article(raw, expected):
    assert process_digit_article(raw) == expected


def test_contraction_table_is_the_official_one():
    assert len(CONTRACTIONS) == 120
    assert CONTRACTIONS["dont"] == "don't" and CONTRACTIONS["youve"] == "you've" and CONTRACTIONS["twas"] == "'twas"


def _gt(k: int, answer: str = "yes", other: str = "no") -> list[str]:
    return [answer] * k + [other] * (10 - k)


@pytest.mark.parametrize("version", ["2021", "legacy"])
@pytest.mark.parametrize(("k", "expected"), [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (7, 1.0), (10, 1.0)])
def test_leave_one_out(version, k, expected):
    assert vqa_accuracy("yes", _gt(k), version) == pytest.approx(expected)


def test_leave_one_out_on_fewer_annotators():
    # 3 answers, 2 match: leaving out a matching one gives 1/3, the other 2/3 -> (1/3 + 1/3 + 2/3) / 3
    assert vqa_accuracy("cat", ["cat", "cat", "dog"]) == pytest.approx(4 / 9)


# (prediction, ground truth, 2021 score, legacy score)
CASES = [
    # all ten agree: 2021 normalises neither side; legacy still normalises the prediction
    ("2", ["Two"] * 10, 0.0, 0.0),
    ("Two", ["Two"] * 10, 1.0, 0.0),
    ("two", ["two"] * 10, 1.0, 0.0),
    ("yes.", ["yes"] * 10, 0.0, 1.0),
    ("yes!", ["yes"] * 10, 0.0, 1.0),
    ("Yes", ["Yes"] * 10, 1.0, 0.0),
    # disagreeing answers: 2021 normalises both sides fully; legacy gives the GT punctuation only
    ("2", _gt(3, "two", "three"), 0.9, 0.0),
    ("two", _gt(3, "2", "3"), 0.9, 0.9),
    ("dog", _gt(4, "a dog", "cat"), 1.0, 0.0),
    ("the dog", _gt(4, "dog", "cat"), 1.0, 1.0),
    ("dont know", _gt(2, "don't know"), 0.6, 0.6),
    ("dont know", _gt(2, "dont know"), 0.6, 0.0),
    ("YES", _gt(5, "Yes", "yes"), 1.0, 1.0),
    ("Yes", _gt(3, "Yes", "no"), 0.9, 0.0),
    ("100,978", ["100,978"] * 3 + ["100978"] + ["lots"] * 6, 1.0, 1.0),
    ("100978", ["100,978"] * 2 + ["lots"] * 8, 0.6, 0.6),
    ("2.5", _gt(2, "2.5", "3"), 0.6, 0.6),
    ("black and white", _gt(2, "black/white", "black and white"), 1.0, 1.0),
    ("black white", _gt(4, "black/white", "gray"), 1.0, 1.0),  # "/" touches no space: becomes one
    ("black white", _gt(4, "black / white", "gray"), 1.0, 0.0),  # " /" deleted: legacy GT keeps two spaces
    # whitespace: 2021 cleans the GT (and checks agreement after cleaning); legacy does not touch it
    ("yes", [" yes"] * 10, 1.0, 0.0),
    ("Yes", ["Yes"] * 9 + ["Yes\n"], 1.0, 0.0),
    ("  yes\t", _gt(3), 0.9, 0.9),
]


@pytest.mark.parametrize(("pred", "gt", "acc_2021", "acc_legacy"), CASES)
def test_versions(pred, gt, acc_2021, acc_legacy):
    assert vqa_accuracy(pred, gt, "2021") == pytest.approx(acc_2021)
    assert vqa_accuracy(pred, gt, "legacy") == pytest.approx(acc_legacy)


def test_default_version_is_2021():
    assert vqa_accuracy("Two", ["Two"] * 10) == 1.0


def test_vqa_accuracy_bad_input():
    with pytest.raises(MumoError, match="version"):
        vqa_accuracy("yes", ["yes"] * 10, "2017")
    with pytest.raises(MumoError, match="no ground-truth"):
        vqa_accuracy("yes", [])


def _ann(qid, answer_type, question_type, answers):
    return {
        "question_id": qid,
        "image_id": 7,
        "answer_type": answer_type,
        "question_type": question_type,
        "multiple_choice_answer": answers[0],
        "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1} for i, a in enumerate(answers)],
    }


def official_fixture() -> tuple[dict, dict, list[dict]]:
    """Questions, annotations and results of four questions in the official layout.

    2021 scores 1, 0.9, 0.3, 1 (80.00); legacy scores 1, 0.9, 0.3, 0 (55.00).
    """
    annotations = {
        "annotations": [
            _ann(1, "yes/no", "is the", ["yes"] * 10),
            _ann(2, "number", "how many", _gt(3, "2", "3")),
            _ann(3, "other", "what color is the", _gt(1, "red", "blue")),
            _ann(4, "other", "what color is the", ["Blue"] * 10),
        ]
    }
    questions = {"questions": [{"question_id": i, "image_id": 7, "question": "?"} for i in (1, 2, 3, 4)]}
    results = [
        {"question_id": 1, "answer": "yes"},
        {"question_id": 2, "answer": "two"},
        {"question_id": 3, "answer": "red"},
        {"question_id": 4, "answer": "Blue"},
    ]
    return questions, annotations, results


@pytest.fixture
def fixture_files():
    return official_fixture()


def test_evaluate_results_2021(fixture_files):
    res = evaluate_results(*fixture_files)
    assert res["metric_version"] == "2021" and res["num_questions"] == 4
    assert res["accuracy"] == pytest.approx((1 + 0.9 + 0.3 + 1) / 4)
    assert res["accuracy_by_type"] == pytest.approx({"yes/no": 1.0, "number": 0.9, "other": 0.65})
    assert res["accuracy_by_question_type"] == pytest.approx(
        {"is the": 1.0, "how many": 0.9, "what color is the": 0.65}
    )


def test_evaluate_results_legacy(fixture_files):
    res = evaluate_results(*fixture_files, version="legacy")
    assert res["metric_version"] == "legacy"
    assert res["accuracy"] == pytest.approx((1 + 0.9 + 0.3 + 0) / 4)
    assert res["accuracy_by_type"] == pytest.approx({"yes/no": 1.0, "number": 0.9, "other": 0.15})


def test_evaluate_results_leaves_inputs_untouched(fixture_files):
    before = copy.deepcopy(fixture_files)
    evaluate_results(*fixture_files)
    evaluate_results(*fixture_files, version="legacy")
    assert fixture_files == before


def _broken(fixture_files, edit):
    q, a, r = copy.deepcopy(fixture_files)
    edit(q, a, r)
    return q, a, r


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda q, a, r: q.pop("questions"), "questions file: missing key 'questions'"),
        (lambda q, a, r: q["questions"][0].pop("question_id"), "questions file: missing key 'question_id'"),
        (lambda q, a, r: a.pop("annotations"), "annotations file: missing key 'annotations'"),
        (lambda q, a, r: a["annotations"][1].pop("answers"), "annotations file: missing key 'answers'"),
        (lambda q, a, r: a["annotations"][1].pop("answer_type"), "annotations file: missing key 'answer_type'"),
        (lambda q, a, r: a["annotations"][1].pop("question_type"), "annotations file: missing key 'question_type'"),
        (lambda q, a, r: a["annotations"][1].pop("question_id"), "annotations file: missing key 'question_id'"),
        (lambda q, a, r: a["annotations"][1]["answers"][0].pop("answer"), "annotations file: missing key 'answer'"),
        (lambda q, a, r: a["annotations"][1].update(answers=[]), "non-empty list"),
        (lambda q, a, r: a["annotations"].append(a["annotations"][0]), "annotated more than once"),
        (lambda q, a, r: r[0].pop("answer"), "results file: missing key 'answer'"),
        (lambda q, a, r: r[0].pop("question_id"), "results file: missing key 'question_id'"),
        (lambda q, a, r: r[0].update(answer=2), "'answer' must be a string"),
        (lambda q, a, r: r[0].update(question_id=[1]), "'question_id' must be an integer"),
        (lambda q, a, r: r.append({"question_id": 1, "answer": "no"}), "answered more than once"),
        (lambda q, a, r: r.pop(), "1 annotated questions have no result (e.g. 4)"),
        (lambda q, a, r: r.append({"question_id": 99, "answer": "no"}), "1 results are for questions not in"),
        (lambda q, a, r: r[3].update(question_id="4"), "1 annotated questions have no result (e.g. 4)"),
        (lambda q, a, r: q["questions"].pop(), "questions and annotations files do not match"),
        (lambda q, a, r: q["questions"].append({"question_id": 5}), "questions and annotations files do not match"),
        (lambda q, a, r: (q["questions"].clear(), a["annotations"].clear(), r.clear()), "no annotations"),
    ],
)
def test_evaluate_results_errors(fixture_files, edit, fragment):
    with pytest.raises(MumoError) as exc:
        evaluate_results(*_broken(fixture_files, edit))
    assert fragment in str(exc.value)


def test_evaluate_results_results_must_be_a_list(fixture_files):
    q, a, _ = fixture_files
    with pytest.raises(MumoError, match="results file"):
        evaluate_results(q, a, {"question_id": 1, "answer": "yes"})
    with pytest.raises(MumoError, match="questions file"):
        evaluate_results([], a, [])


def test_evaluate_results_many_missing_shows_a_few(fixture_files):
    q, a, _ = fixture_files
    with pytest.raises(MumoError, match=r"4 annotated questions have no result \(e.g. 1, 2, 3, 4\)"):
        evaluate_results(q, a, [])


def test_evaluate_results_unknown_version(fixture_files):
    with pytest.raises(MumoError, match="unknown VQA metric version"):
        evaluate_results(*fixture_files, version="v1")
