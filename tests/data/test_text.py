import pytest
import torch

from mumo.data.text import MAX_QUESTION_CHARS, PAD_ID, UNK_ID, Vocab, check_question, tokenize
from mumo.errors import QuestionError


def test_tokenize_follows_mcan_preprocessing():
    assert tokenize("What's the COLOR, of the shape?") == ["whats", "the", "color", "of", "the", "shape"]
    assert tokenize("left-most/right (top)!") == ["left", "most", "right", "top"]
    assert tokenize('a "b" *c* #d: e; f.') == ["a", "b", "c", "d", "e", "f"]


def test_vocab_starts_with_pad_unk_and_maps_unknown_words_to_unk():
    vocab = Vocab.build(["what color is the shape?", "is there a circle?"])
    assert vocab.tokens[:2] == ["<pad>", "<unk>"]
    ids = vocab.encode("what colour is the zebra", max_len=8)
    assert ids[1] == UNK_ID and ids[4] == UNK_ID
    assert ids[5:] == [PAD_ID] * 3
    assert vocab.tokens[ids[0]] == "what"


def test_encode_truncates_and_pads():
    vocab = Vocab.build(["a b c d e f"])
    assert len(vocab.encode("a b c d e f a b c", max_len=4)) == 4
    batch = vocab.encode_batch(["a", "a b c d e f"], max_len=5)
    assert batch.shape == (2, 5) and batch.dtype == torch.long
    assert batch[0, 1:].eq(PAD_ID).all()


@pytest.mark.parametrize(
    ("question", "message"),
    [
        ("", "empty"),
        ("   \t\n", "empty"),
        ("x" * 10_000, "limit"),
        (b"what \xff\xfe is it", "UTF-8"),
        ("what \udcff is it", "UTF-8"),
    ],
)
def test_check_question_rejects_bad_input(question, message):
    with pytest.raises(QuestionError, match=message):
        check_question(question)


def test_check_question_accepts_unicode_and_bytes():
    assert check_question("what colour is the café?") == "what colour is the café?"
    assert check_question(b"is it red?") == "is it red?"
    assert len(check_question("y" * MAX_QUESTION_CHARS)) == MAX_QUESTION_CHARS
