"""The question grammar of mumo scenes, as in CLEVR: templates over functional programs, their rendering into text
and a strict parser back.

A question is a :class:`Template` (a program skeleton with paraphrases) filled with :class:`Slots` (the
descriptions of the objects it names, a relation, a place). :func:`build_program` turns them into the canonical
program of :mod:`~mumo.data.scenes.program` (filters in the order size, colour, material, shape), :func:`render`
into text, and :func:`parse` maps every text the grammar produces back to its program (``None`` for any other
text); :func:`decode` gives a canonical program's template and slots back.

A description (the ``x`` / ``y`` of a template) names some of size, colour, material and shape: words in the order
size, colour, material, then the noun, a shape or "object"/"thing" ("objects"/"things" in the plural slots
``x_pl``/``y_pl``). The material may come after the noun instead ("with stripes", "without stripes"). A paraphrase
is a pattern: ``{slot}`` a slot (``a_x`` is ``x`` with its article "a"/"an"), ``[a|b]`` a choice of words. Texts are
lowercase and end with "?"; :func:`parse` first lowercases and collapses white space.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

import numpy as np

from mumo.data.scenes.graph import COLORS, PLACES, RELATIONS, SHAPES
from mumo.data.scenes.program import Program, ProgramError, check_program

FAMILIES = (
    "exist",
    "count",
    "query_attribute",
    "relate_query",
    "relate_count",
    "compare_count",
    "compare_attribute",
    "place_verify",
    "place_query",
)
PLACE_FAMILIES = ("place_verify", "place_query")

# ---- the lexicon -------------------------------------------------------------------------------------------------

ORDER = ("size", "color", "material", "shape")  # the attributes of a description, in word order
# (size, color, material, shape), each a value or None (not named): the objects with the named values
Description = tuple[str | None, str | None, str | None, str | None]

SIZE_WORDS: dict[str, tuple[str, ...]] = {"small": ("small", "little"), "large": ("large", "big")}
COLOR_WORDS: dict[str, tuple[str, ...]] = {c: ("gray", "grey") if c == "gray" else (c,) for c in COLORS}
MATERIAL_WORDS: dict[str, tuple[str, ...]] = {"solid": ("solid", "plain"), "striped": ("striped",)}
MATERIAL_PHRASES: dict[str, tuple[str, ...]] = {"solid": ("without stripes",), "striped": ("with stripes",)}
SHAPE_PLURALS: dict[str, str] = {s: s + "es" if s.endswith("ss") else s + "s" for s in SHAPES}
OBJECT_NOUNS, OBJECT_PLURALS = ("object", "thing"), ("objects", "things")
RELATION_PHRASES: dict[str, tuple[str, ...]] = {
    "left": ("left of", "to the left of", "on the left side of"),
    "right": ("right of", "to the right of", "on the right side of"),
    "above": ("above", "over"),
    "below": ("below", "under", "beneath"),
    "near": ("near", "next to", "close to"),
}
PLACE_WORDS: dict[str, tuple[str, ...]] = {
    "beach": ("beach",),
    "meadow": ("meadow", "field"),
    "desert": ("desert",),
    "snowfield": ("snowfield", "snowy field"),
    "night sky": ("night sky", "starry sky"),
    "forest": ("forest",),
    "room": ("room",),
    "street": ("street", "road"),
}
AFTER_NOUN_RATE = 0.25  # how often a description puts its material after the noun ("with stripes")
_ADJECTIVES = (SIZE_WORDS, COLOR_WORDS, MATERIAL_WORDS)  # the words before the noun, in order

# ---- templates ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """A question type: its family, its program skeleton (by ``family``, ``attribute`` and ``compare``) and its
    paraphrases (patterns, see the module docstring)."""

    id: str
    family: str
    paraphrases: tuple[str, ...]
    attribute: str | None = None  # the attribute queried or compared
    compare: str | None = None  # compare_count: "greater_than", "less_than" or "equal_integer"


@dataclass(frozen=True)
class Slots:
    """What fills a template: descriptions (tuples in :data:`ORDER`, ``None`` for an unnamed attribute)."""

    x: Description | None = None  # the object asked about, the anchor of a relation, the first of a comparison
    y: Description | None = None  # the object(s) related to x, the second of a comparison
    relation: str | None = None
    place: str | None = None


_QUERY = {  # {obj}: "the {x}", or "the {y} ... {relation} the {x}"
    "shape": (
        "what shape is {obj}?",
        "which shape is {obj}?",
        "what is the shape of {obj}?",
        "what shape does {obj} have?",
    ),
    "color": (
        "what [colour|color] is {obj}?",
        "which [colour|color] is {obj}?",
        "what is the [colour|color] of {obj}?",
        "what [colour|color] does {obj} have?",
    ),
    "size": (
        "what size is {obj}?",
        "how big is {obj}?",
        "is {obj} [small or large|large or small]?",
        "what is the size of {obj}?",
    ),
    "material": (
        "what material is {obj}?",
        "what material is {obj} made of?",
        "is {obj} [solid or striped|striped or solid]?",
        "what is the material of {obj}?",
    ),
}
_ATTRIBUTE_NOUNS = {"shape": "shape", "color": "[colour|color]", "size": "size", "material": "material"}
_COMPARE_COUNT = {
    "greater_than": (
        "are there more {x_pl} than {y_pl}?",
        "is the number of {x_pl} [greater|larger|bigger] than the number of {y_pl}?",
        "do the {x_pl} outnumber the {y_pl}?",
    ),
    "less_than": (
        "are there fewer {x_pl} than {y_pl}?",
        "is the number of {x_pl} [smaller|less] than the number of {y_pl}?",
        "are the {x_pl} fewer than the {y_pl}?",
    ),
    "equal_integer": (
        "are there as many {x_pl} as {y_pl}?",
        "are there the same number of {x_pl} and {y_pl}?",
        "is the number of {x_pl} [equal to|the same as] the number of {y_pl}?",
    ),
}
COMPARE_TEMPLATES = {"greater_than": "compare_more", "less_than": "compare_fewer", "equal_integer": "compare_equal"}


def _make_templates() -> tuple[Template, ...]:
    related = "the {y} [that is |]{relation} the {x}"
    out = [
        Template(
            "exist",
            "exist",
            (
                "is there {a_x}?",
                "are there any {x_pl}?",
                "is there {a_x} in the [image|picture|scene]?",
                "does the [image|picture|scene] [contain|show] {a_x}?",
            ),
        ),
        Template(
            "count",
            "count",
            (
                "how many {x_pl} are there?",
                "what number of {x_pl} are there?",
                "how many {x_pl} are in the [image|picture|scene]?",
                "what is the number of {x_pl}?",
            ),
        ),
    ]
    for attr, patterns in _QUERY.items():
        out.append(Template(f"query_{attr}", "query_attribute", _fill(patterns, "the {x}"), attribute=attr))
    for attr, patterns in _QUERY.items():
        out.append(Template(f"relate_query_{attr}", "relate_query", _fill(patterns, related), attribute=attr))
    out.append(
        Template(
            "relate_count",
            "relate_count",
            (
                "how many {y_pl} are {relation} the {x}?",
                "what number of {y_pl} are {relation} the {x}?",
                "how many {y_pl} are there {relation} the {x}?",
            ),
        )
    )
    for compare, patterns in _COMPARE_COUNT.items():
        out.append(Template(COMPARE_TEMPLATES[compare], "compare_count", patterns, compare=compare))
    for attr, noun in _ATTRIBUTE_NOUNS.items():
        patterns = (
            f"is the {{x}} the same {noun} as the {{y}}?",
            f"does the {{x}} have the same {noun} as the {{y}}?",
            f"do the {{x}} and the {{y}} have the same {noun}?",
            f"are the {{x}} and the {{y}} the same {noun}?",
        )
        if attr == "material":
            patterns += ("is the {x} made of the same material as the {y}?",)
        out.append(Template(f"same_{attr}", "compare_attribute", patterns, attribute=attr))
    out.append(
        Template(
            "place_verify",
            "place_verify",
            (
                "is this a {place}?",
                "is this a [picture|photo|image] of a {place}?",
                "does this [picture|photo|image] show a {place}?",
                "is the [place|setting] a {place}?",
            ),
        )
    )
    out.append(
        Template(
            "place_query",
            "place_query",
            (
                "where was this [picture|photo|image] taken?",
                "what [kind|type|sort] of place is this?",
                "what place is this?",
                "where is this?",
                "what is the [place|setting]?",
            ),
        )
    )
    return tuple(out)


def _fill(patterns: tuple[str, ...], obj: str) -> tuple[str, ...]:
    return tuple(p.replace("{obj}", obj) for p in patterns)


TEMPLATES: tuple[Template, ...] = _make_templates()
TEMPLATE: dict[str, Template] = {t.id: t for t in TEMPLATES}  # by id
_DESCRIPTIONS = {  # how many descriptions each family fills (x, then y)
    "exist": 1,
    "count": 1,
    "query_attribute": 1,
    "relate_query": 2,
    "relate_count": 2,
    "compare_count": 2,
    "compare_attribute": 2,
    "place_verify": 0,
    "place_query": 0,
}

# ---- programs ----------------------------------------------------------------------------------------------------


class _Builder:
    def __init__(self) -> None:
        self.nodes: Program = []

    def add(self, function: str, inputs: Iterable[int] = (), values: Iterable[str] = ()) -> int:
        self.nodes.append({"function": function, "inputs": list(inputs), "value_inputs": list(values)})
        return len(self.nodes) - 1

    def select(self, description: Description, start: int | None = None) -> int:
        """``scene`` (or the node ``start``) then a filter per named attribute."""
        k = self.add("scene") if start is None else start
        for attr, value in zip(ORDER, description, strict=True):
            if value is not None:
                k = self.add(f"filter_{attr}", [k], [value])
        return k


def build_program(template: Template, slots: Slots) -> Program:
    """The canonical program of ``template`` filled with ``slots``."""
    b, family, attr = _Builder(), template.family, template.attribute
    if family in ("exist", "count"):
        b.add(family, [b.select(slots.x)])
    elif family == "query_attribute":
        b.add(f"query_{attr}", [b.add("unique", [b.select(slots.x)])])
    elif family in ("relate_query", "relate_count"):
        anchor = b.add("unique", [b.select(slots.x)])
        chosen = b.select(slots.y, b.add("relate", [anchor], [slots.relation]))
        if family == "relate_count":
            b.add("count", [chosen])
        else:
            b.add(f"query_{attr}", [b.add("unique", [chosen])])
    elif family == "compare_count":
        first = b.add("count", [b.select(slots.x)])
        b.add(template.compare, [first, b.add("count", [b.select(slots.y)])])
    elif family == "compare_attribute":
        first = b.add(f"query_{attr}", [b.add("unique", [b.select(slots.x)])])
        b.add(f"equal_{attr}", [first, b.add(f"query_{attr}", [b.add("unique", [b.select(slots.y)])])])
    elif family == "place_verify":
        b.add("equal_place", [b.add("query_place", [b.add("scene")])], [slots.place])
    else:  # place_query
        b.add("query_place", [b.add("scene")])
    return b.nodes


def decode(program: Program) -> tuple[Template, Slots]:
    """The template and slots of a program of the grammar (the inverse of :func:`build_program`).

    Raises:
        ProgramError: ``program`` is malformed or not the canonical program of any template.
    """
    check_program(program)
    skeleton, descriptions, slots = [], [], {}
    for node in program:
        function = node["function"]
        if function.startswith("filter_"):
            descriptions[-1][ORDER.index(function[len("filter_") :])] = node["value_inputs"][0]
            continue
        skeleton.append(function)
        if function in ("scene", "relate"):
            descriptions.append([None] * 4)
        if function == "relate":
            slots["relation"] = node["value_inputs"][0]
        if function == "equal_place":
            slots["place"] = node["value_inputs"][0]
    template = _skeletons().get(tuple(skeleton))
    if template is None:
        raise ProgramError("not a program of the question grammar")
    for name, description in zip(("x", "y"), descriptions[: _DESCRIPTIONS[template.family]], strict=False):
        slots[name] = tuple(description)
    decoded = Slots(**slots)
    if build_program(template, decoded) != program:
        raise ProgramError("not the canonical program of its template (filter order or inputs differ)")
    return template, decoded


@cache
def _skeletons() -> dict[tuple[str, ...], Template]:
    """Template by the functions of its program, filters left out (computed once)."""
    dummy = Slots(x=(None,) * 4, y=(None,) * 4, relation=RELATIONS[0], place=PLACES[0])
    out = {}
    for t in TEMPLATES:
        key = tuple(n["function"] for n in build_program(t, dummy) if not n["function"].startswith("filter_"))
        out[key] = t
    return out


# ---- rendering ---------------------------------------------------------------------------------------------------

_PART = re.compile(r"\{(\w+)\}|\[([^\]]*)\]|([^{\[]+)")


def _parts(pattern: str) -> tuple[tuple[str, str | tuple[str, ...]], ...]:
    """A pattern as ("slot", name), ("choice", words...) and ("text", text) parts."""
    out = []
    for slot, choice, text in _PART.findall(pattern):
        out.append(("slot", slot) if slot else ("text", text) if text else ("choice", tuple(choice.split("|"))))
    return tuple(out)


def render(template: Template, slots: Slots, rng: np.random.Generator, paraphrase: int | None = None) -> str:
    """The text of ``template`` filled with ``slots``: paraphrase number ``paraphrase`` (random if None), words
    drawn with ``rng``."""
    return render_with(template, slots, random.Random(int(rng.integers(2**63))), paraphrase)


def render_program(program: Program, rng: np.random.Generator) -> str:
    """A text for a program of the grammar (a random paraphrase and words); raises :class:`ProgramError` for a
    program that is not one (see :func:`decode`)."""
    template, slots = decode(program)
    return render(template, slots, rng)


def render_with(template: Template, slots: Slots, rnd: random.Random, paraphrase: int | None = None) -> str:
    if paraphrase is None:
        paraphrase = rnd.randrange(len(template.paraphrases))
    out = []
    for kind, value in _compiled()[template.id][paraphrase][0]:
        if kind == "text":
            out.append(value)
        elif kind == "choice":
            out.append(rnd.choice(value))
        else:
            out.append(_render_slot(value, slots, rnd))
    return "".join(out)


def _render_slot(name: str, slots: Slots, rnd: random.Random) -> str:
    if name == "relation":
        return rnd.choice(RELATION_PHRASES[slots.relation])
    if name == "place":
        return rnd.choice(PLACE_WORDS[slots.place])
    article = name.startswith("a_")
    name = name.removeprefix("a_")
    phrase = _noun_phrase(getattr(slots, name[0]), name.endswith("_pl"), rnd)
    if article:
        return ("an " if phrase[0] in "aeiou" else "a ") + phrase
    return phrase


def _noun_phrase(description: Description, plural: bool, rnd: random.Random) -> str:
    """The words of a description: "large red striped stars", "small object with stripes"..."""
    *adjectives, shape = description
    after = adjectives[2] is not None and rnd.random() < AFTER_NOUN_RATE
    words = [rnd.choice(lexicon[v]) for lexicon, v in zip(_ADJECTIVES, adjectives, strict=True) if v is not None]
    if after:
        words.pop()
    if shape is None:
        words.append(rnd.choice(OBJECT_PLURALS if plural else OBJECT_NOUNS))
    else:
        words.append(SHAPE_PLURALS[shape] if plural else shape)
    if after:
        words.append(rnd.choice(MATERIAL_PHRASES[adjectives[2]]))
    return " ".join(words)


# ---- parsing -----------------------------------------------------------------------------------------------------


def parse(question: str) -> Program | None:
    """The program of a text the grammar produces, or ``None`` for any other text.

    Case and runs of white space do not matter; everything else does: word order, unknown words, extra or missing
    words, singular for plural, "a" for "an", the final "?".
    """
    if not isinstance(question, str):
        return None
    text = " ".join(question.lower().split()).replace(" ?", "?")
    for template in TEMPLATES:
        for _, regex in _compiled()[template.id]:
            match = regex.fullmatch(text)
            if match is not None:
                slots = _match_slots(match)
                if slots is not None:
                    return build_program(template, slots)
    return None


@cache
def _compiled() -> dict[str, tuple[tuple[tuple, re.Pattern], ...]]:
    """Per template id, each paraphrase as (parts, regex) (computed once)."""
    out = {}
    for t in TEMPLATES:
        out[t.id] = tuple((parts, re.compile(_regex(parts))) for parts in map(_parts, t.paraphrases))
    return out


def _regex(parts: tuple) -> str:
    out = []
    for kind, value in parts:
        if kind == "text":
            out.append(re.escape(value))
        elif kind == "choice":
            out.append(_alternatives(value))
        else:
            out.append(_slot_regex(value))
    return "".join(out)


def _alternatives(words: Iterable[str], name: str | None = None) -> str:
    body = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return f"(?P<{name}>{body})" if name else f"(?:{body})"


def _slot_regex(name: str) -> str:
    if name == "relation":
        return _alternatives(_WORD_VALUES["relation"], "relation")
    if name == "place":
        return _alternatives(_WORD_VALUES["place"], "place")
    article = "(?:a (?=[^aeiou])|an (?=[aeiou]))" if name.startswith("a_") else ""
    name = name.removeprefix("a_")
    return article + _description_regex(name[0], name.endswith("_pl"))


def _description_regex(prefix: str, plural: bool) -> str:
    def group(key: str, words: Iterable[str]) -> str:
        return _alternatives(words, f"{prefix}_{key}")

    size, color, material = (group(a, _WORD_VALUES[a]) for a in ("size", "color", "material"))
    shape = group("shape", SHAPE_PLURALS.values() if plural else SHAPES)
    noun = group("noun", OBJECT_PLURALS if plural else OBJECT_NOUNS)
    after = group("after", _WORD_VALUES["after"])
    return f"(?:{size} )?(?:{color} )?(?:{material} )?(?:{shape}|{noun})(?: {after})?"


def _word_values() -> dict[str, dict[str, str]]:
    """Per slot group, word -> value."""
    lexicons = {
        "size": SIZE_WORDS,
        "color": COLOR_WORDS,
        "material": MATERIAL_WORDS,
        "after": MATERIAL_PHRASES,
        "relation": RELATION_PHRASES,
        "place": PLACE_WORDS,
    }
    out = {k: {w: v for v, words in lex.items() for w in words} for k, lex in lexicons.items()}
    out["shape"] = {**{s: s for s in SHAPES}, **{p: s for s, p in SHAPE_PLURALS.items()}}
    return out


_WORD_VALUES = _word_values()


def _match_slots(match: re.Match) -> Slots | None:
    groups = match.groupdict()
    slots = {}
    for prefix in ("x", "y"):
        if f"{prefix}_noun" not in groups:
            continue
        size, color, material, after, shape = (
            groups[f"{prefix}_{k}"] for k in ("size", "color", "material", "after", "shape")
        )
        if material is not None and after is not None:
            return None  # "striped star with stripes"
        words = (size, color, material or after, shape)
        keys = ("size", "color", "after" if after else "material", "shape")
        slots[prefix] = tuple(None if w is None else _WORD_VALUES[k][w] for k, w in zip(keys, words, strict=True))
    for key in ("relation", "place"):
        if groups.get(key) is not None:
            slots[key] = _WORD_VALUES[key][groups[key]]
    return Slots(**slots)
