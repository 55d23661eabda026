"""The tag cue of a question (reference §5): its first content words.

The paper's tags come from the target question itself (part-of-speech based, 3 tags). mumo takes the question's
first ``slots`` distinct words that are not function words (articles, copulas, pronouns, prepositions, question
words), so "what colour is the large star?" gives ``["colour", "large", "star"]``. At inference on a new image
the tags come from the user, or from the tagger trained with the model (the image's most likely tags).
"""

from __future__ import annotations

from mumo.data.text import tokenize

_FUNCTION_WORDS = (
    "a an the this that these those it its is are was were be been being do does did has have had there here "
    "what which who whom whose where when why how of to in on at by for from into onto with as than or and but "
    "any some i you he she we they me him her us them my your our their"
)
FUNCTION_WORDS = frozenset(_FUNCTION_WORDS.split())


def question_tags(question: str, slots: int = 3) -> list[str]:
    """The question's first ``slots`` distinct content words, in order; its first word when it has none."""
    words = tokenize(question)
    out: list[str] = []
    for w in words:
        if w not in FUNCTION_WORDS and w not in out:
            out.append(w)
            if len(out) == slots:
                break
    return out or words[:1]
