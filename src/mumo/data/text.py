"""Question preprocessing and vocabulary, as in MCAN (reference §1.4).

lowercase; delete ``.,'!?"()*#:;``; replace ``-`` and ``/`` with spaces; split on whitespace;
truncate to ``max_len`` tokens; PAD = 0, UNK = 1. Unknown words map to UNK, never crash.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from mumo.errors import QuestionError

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
MAX_QUESTION_CHARS = 1000  # longer input is rejected: no real question is this long

_DELETE = re.compile(r"[.,'!?\"()*#:;]")
_SPACE = re.compile(r"[-/]")


def tokenize(question: str) -> list[str]:
    """Split a question into MCAN tokens (no truncation)."""
    return _SPACE.sub(" ", _DELETE.sub("", question.lower())).split()


def check_question(question: str | bytes) -> str:
    """Validate a user's question and return it as text.

    Raises:
        QuestionError: empty or whitespace-only, over :data:`MAX_QUESTION_CHARS`, or not valid UTF-8.
    """
    if isinstance(question, bytes):
        try:
            question = question.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise QuestionError(f"question is not valid UTF-8 (byte {exc.start})") from None
    if not isinstance(question, str):
        raise QuestionError(f"question must be text, not {type(question).__name__}")
    # Non-UTF-8 command-line bytes reach Python as lone surrogates (PEP 383).
    if any("\ud800" <= ch <= "\udfff" for ch in question):
        raise QuestionError("question is not valid UTF-8")
    if not question.strip():
        raise QuestionError("question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionError(f"question has {len(question)} characters; the limit is {MAX_QUESTION_CHARS}")
    return question


@dataclass
class Vocab:
    """Token vocabulary; index 0 is PAD and 1 is UNK."""

    tokens: list[str]

    def __post_init__(self) -> None:
        if self.tokens[:2] != [PAD, UNK]:
            raise ValueError("a vocabulary starts with <pad>, <unk>")
        self.index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def build(cls, questions: Iterable[str], min_count: int = 1) -> Vocab:
        """Vocabulary of every token seen at least ``min_count`` times, in order of first appearance."""
        counts = Counter(t for q in questions for t in tokenize(q))
        words = [w for w, c in counts.items() if c >= min_count]
        return cls([PAD, UNK, *words])

    def encode(self, question: str, max_len: int) -> list[int]:
        """Token ids, truncated to ``max_len`` and zero-padded to it."""
        ids = [self.index.get(t, UNK_ID) for t in tokenize(question)][:max_len]
        return ids + [PAD_ID] * (max_len - len(ids))

    def encode_batch(self, questions: list[str], max_len: int) -> torch.Tensor:
        """(N, max_len) int64 token ids."""
        return torch.tensor([self.encode(q, max_len) for q in questions], dtype=torch.long)
