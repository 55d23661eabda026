"""Questions about a scene, as in CLEVR: templates over functional programs, rendering, a strict parser and
answer-balanced sampling.

A question is a :class:`Template` (a program skeleton with paraphrases) filled with :class:`Slots` (the
descriptions of the objects it names, a relation, a place). :func:`build_program` turns them into the canonical
program of :mod:`~mumo.data.scenes.program` (filters in the order size, colour, material, shape), :func:`render`
into text, and :func:`parse` maps every text the grammar produces back to its program (``None`` for any other
text). :func:`sample_questions` draws well-posed questions for an image, keeping the answers of each template close
to uniform with a :class:`Balancer` shared by the images of a chunk.

The grammar. A description (the ``x`` / ``y`` of a template) names some of size, colour, material and shape: words
in the order size, colour, material, then the noun, a shape or "object"/"thing" ("objects"/"things" in the plural
slots ``x_pl``/``y_pl``). The material may come after the noun instead ("with stripes", "without stripes"). A
paraphrase is a pattern: ``{slot}`` a slot (``a_x`` is ``x`` with its article "a"/"an"), ``[a|b]`` a choice of
words. Texts are lowercase and end with "?"; :func:`parse` first lowercases and collapses white space.

Balancing (:class:`Balancer`): answer-first sampling. For a template, the answers this scene can give are tried
from the least used so far, and an answer more than a small slack above the least used one (over the answers seen
so far, or for counts over those this scene can give) is refused. A program, and a question shape (which
attributes it names), is refused an answer it already gave more often than any other, so the same question string
is answered "yes" about as often as "no". Sampling uses ``rng`` once per image (to seed a ``random.Random``).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from dataclasses import asdict, dataclass, field
from functools import cache, cached_property

import numpy as np

from mumo.data.scenes.graph import ATTRIBUTES, COLORS, PLACES, RELATIONS, SHAPES, Scene
from mumo.data.scenes.program import (
    ANSWERS,
    Program,
    ProgramError,
    check_program,
    evaluate,
    execute,
    referred_objects,
)

__all__ = [
    "ANSWERS",
    "FAMILIES",
    "QUESTIONS_PER_IMAGE",
    "TEMPLATES",
    "Balancer",
    "Program",
    "ProgramError",
    "Question",
    "Slots",
    "Template",
    "build_program",
    "decode",
    "execute",
    "parse",
    "referred_objects",
    "render",
    "render_program",
    "sample_questions",
]

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
QUESTIONS_PER_IMAGE = 10
PLACE_RATE = 0.6  # chance that an image gets a question of each place family (at most one each)

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
_COMPARE_IDS = {"greater_than": "compare_more", "less_than": "compare_fewer", "equal_integer": "compare_equal"}


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
        out.append(Template(_COMPARE_IDS[compare], "compare_count", patterns, compare=compare))
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
_TEMPLATE: dict[str, Template] = {t.id: t for t in TEMPLATES}
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
    return _render(template, slots, random.Random(int(rng.integers(2**63))), paraphrase)


def render_program(program: Program, rng: np.random.Generator) -> str:
    """A text for a program of the grammar (a random paraphrase and words); raises :class:`ProgramError` for a
    program that is not one (see :func:`decode`)."""
    template, slots = decode(program)
    return render(template, slots, rng)


def _render(template: Template, slots: Slots, rnd: random.Random, paraphrase: int | None = None) -> str:
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


# ---- sampling ----------------------------------------------------------------------------------------------------


@dataclass
class Question:
    """A question about one image, with its program, answer and the objects it refers to."""

    text: str
    family: str
    template: str  # a Template id
    program: Program
    answer: str
    objects: list[int]  # referred_objects(program, scene): what an explanation of the answer should look at

    def to_dict(self) -> dict:
        return asdict(self)


class Balancer:
    """Answer counts so far, per template (and family) and per program, for :func:`sample_questions`.

    Plain counters, deterministic; use one per chunk of images (a few hundred), with that chunk's random stream.
    Program keys are a question's program and its shape (the attributes it names, without their values, and how
    many): none of them may give one answer more often than any other, so that neither a question string nor its
    shape predicts its answer.

    Args:
        slack: how many questions an answer may be ahead of the least used answer of its template...
        slack_share: ...plus this share of the template's questions so far.
        max_zero_share: the largest share of "0" among the answers of a counting template.
    """

    def __init__(self, slack: int = 2, slack_share: float = 0.02, max_zero_share: float = 0.2) -> None:
        self.slack, self.slack_share, self.max_zero_share = slack, slack_share, max_zero_share
        self.templates: dict[str, Counter[str]] = {}  # template id -> answer -> questions
        self.families: dict[str, Counter[str]] = {}  # family -> answer -> questions
        self.programs: dict[Hashable, Counter[str]] = {}  # program (or program shape) key -> answer -> questions
        self.seen: dict[str, dict[str, None]] = {}  # template id -> answers some scene could give (ordered set)

    def targets(
        self, template: Template, available: list[str], rnd: random.Random, *, flat: bool = False, strict: bool = True
    ) -> list[str]:
        """The answers of ``available`` (those this scene can give) to aim for, least used first.

        With ``strict``, answers more than the slack above the least used one are left out: the least used of all
        the answers seen so far, or of ``available`` if ``flat`` (counts, where high counts are rare).
        """
        counts = self.templates.get(template.id, Counter())
        seen = self.seen.setdefault(template.id, {})
        seen.update(dict.fromkeys(available))
        order = list(available)
        rnd.shuffle(order)
        order.sort(key=counts.__getitem__)
        if not strict or not order:
            return order
        total = sum(counts.values())
        limit = min(counts[a] for a in (available if flat else seen)) + self.slack + self.slack_share * total
        zero_full = counts["0"] >= max(1.0, self.max_zero_share * total)
        return [a for a in order if counts[a] <= limit and not (a == "0" and zero_full)]

    def allows(self, keys: Iterable[Hashable], answer: str) -> bool:
        """Whether programs ``keys`` may get ``answer``: not if one already got it more often than any other answer."""
        for key in keys:
            counts = self.programs.get(key)
            if counts and counts[answer] > max((c for a, c in counts.items() if a != answer), default=0):
                return False
        return True

    def add(self, template: Template, keys: Iterable[Hashable], answer: str) -> None:
        """Count ``answer`` for ``template`` (and its family) and for each of ``keys``."""
        for table, key in ((self.templates, template.id), (self.families, template.family)):
            table.setdefault(key, Counter())[answer] += 1
        for key in keys:
            self.programs.setdefault(key, Counter())[answer] += 1


_TRIES = 8  # instantiations tried per target answer
_ROUNDS = 4  # passes over the families per image before balancing is relaxed
_EXIST_MASKS = tuple(m for m in range(1, 16) if m & 0b1010)  # descriptions naming a colour or a shape
_COUNT_MASKS = tuple(range(1, 16))
_BITS = tuple(tuple(bool(m >> k & 1) for k in range(4)) for m in range(16))
_VALUES = tuple(ATTRIBUTES[a] for a in ORDER)
_RELATE_ANCHORS = 6  # anchors looked at per relate_count question


def _project(description: Description, mask: int) -> Description:
    b = _BITS[mask]
    return tuple(v if keep else None for v, keep in zip(description, b, strict=True))


def _random_description(mask: int, rnd: random.Random) -> Description:
    return tuple(rnd.choice(values) if keep else None for values, keep in zip(_VALUES, _BITS[mask], strict=True))


def _covers(general: Description, specific: Description) -> bool:
    """Whether every object that ``specific`` describes is one that ``general`` describes."""
    return all(u is None or u == v for u, v in zip(general, specific, strict=True))


def _nested(a: Description, b: Description) -> bool:
    return _covers(a, b) or _covers(b, a)


class _Index:
    """What the sampler needs to know about one scene, computed once."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        self.objects = [(o.size, o.color, o.material, o.shape) for o in scene.objects]
        self.n = len(self.objects)
        self.views = [[_project(d, m) for m in range(16)] for d in self.objects]  # [object][mask]
        members: dict[Description, list[int]] = {}
        for i, row in enumerate(self.views):
            for d in row:
                members.setdefault(d, []).append(i)
        self.members = members  # every description of at least one object -> those objects
        self.unique = [[m for m in range(1, 16) if len(members[row[m]]) == 1] for row in self.views]

    @cached_property
    def present(self) -> list[Description]:
        return [d for d in self.members if any(v is not None for v in d)]

    @cached_property
    def by_count(self) -> dict[int, list[Description]]:
        out: dict[int, list[Description]] = {}
        for d, objects in self.members.items():
            out.setdefault(len(objects), []).append(d)
        return out

    @cached_property
    def anchors(self) -> list[tuple[int, str, list[int]]]:
        """(j, relation, the objects that are relation j) for every object j that a description singles out."""
        related: dict[tuple[str, int], list[int]] = {}
        for relation, pairs in self.scene.relations.items():
            for i, j in pairs:
                related.setdefault((relation, j), []).append(i)
        return [(j, r, related.get((r, j), [])) for j in range(self.n) if self.unique[j] for r in RELATIONS]

    def unique_within(self, i: int, group: list[int], exclude: int) -> list[int]:
        """The masks (without the bits of ``exclude``) whose description of object i fits no other of ``group``."""
        row, others = self.views[i], [self.views[o] for o in group if o != i]
        return [m for m in range(16) if not m & exclude and all(o[m] != row[m] for o in others)]


Candidate = tuple[Template, Slots, str]  # a template, its slots and the answer they give on the scene


def _keys(template: Template, slots: Slots) -> tuple[Hashable, ...]:
    """The balancer's keys of a question: its program, then its shape (which attributes it names, not their
    values), then how many attributes it names."""
    x, y = (() if d is None else tuple(v is None for v in d) for d in (slots.x, slots.y))
    return (template.id, slots), (template.id, x, y, slots.relation), (template.id, x.count(False), y.count(False))


@dataclass
class _Context:
    index: _Index
    balancer: Balancer
    rnd: random.Random
    strict: bool = True
    asked: set = field(default_factory=set)  # (template id, slots) already asked about this image

    def targets(self, template: Template, available: list[str], flat: bool = False) -> list[str]:
        return self.balancer.targets(template, available, self.rnd, flat=flat, strict=self.strict)

    def fresh(self, template: Template, slots: Slots, answer: str) -> bool:
        keys = _keys(template, slots)
        return keys[0] not in self.asked and (not self.strict or self.balancer.allows(keys, answer))

    def accept(self, template: Template, slots: Slots, target: str) -> Question:
        program = build_program(template, slots)
        answer, objects = evaluate(program, self.index.scene)
        if answer != target:
            raise RuntimeError(f"question sampler: {template.id} {slots} answers {answer!r}, not {target!r}")
        keys = _keys(template, slots)
        self.asked.add(keys[0])
        self.balancer.add(template, keys, answer)
        return Question(_render(template, slots, self.rnd), template.family, template.id, program, answer, objects)


def sample_questions(
    scene: Scene, rng: np.random.Generator, n: int = QUESTIONS_PER_IMAGE, balancer: Balancer | None = None
) -> list[Question]:
    """``n`` distinct, well-posed questions about ``scene``, families spread evenly, answers balanced.

    Each image gets the families in a shuffled order, round after round (a place family at most once, with
    probability :data:`PLACE_RATE`); each family draws an answer-first question (see :class:`Balancer`). Answers
    are balanced across the images that share ``balancer`` (a fresh one when None: no balancing across images).
    If balancing leaves fewer than ``n`` questions it is relaxed for the rest of the image. Deterministic given
    ``rng`` (one draw from it) and the balancer's state.
    """
    rnd = random.Random(int(rng.integers(2**63)))
    ctx = _Context(_Index(scene), balancer if balancer is not None else Balancer(), rnd)
    questions: list[Question] = []
    for strict in (True, False):
        ctx.strict = strict
        for round_ in range(_ROUNDS):
            deck = [f for f in FAMILIES if f not in PLACE_FAMILIES or (round_ == 0 and rnd.random() < PLACE_RATE)]
            rnd.shuffle(deck)
            for family in deck:
                if len(questions) == n:
                    return questions
                candidate = _SAMPLERS[family](ctx)
                if candidate is not None:
                    questions.append(ctx.accept(*candidate))
    return questions


def _exist(ctx: _Context) -> Candidate | None:
    t, idx, rnd = _TEMPLATE["exist"], ctx.index, ctx.rnd
    for target in ctx.targets(t, ["yes", "no"]):
        for _ in range(_TRIES):
            mask = rnd.choice(_EXIST_MASKS)
            if target == "yes":
                x = idx.views[rnd.randrange(idx.n)][mask]
            else:
                x = _random_description(mask, rnd)
                if x in idx.members:
                    continue
            if ctx.fresh(t, slots := Slots(x=x), target):
                return t, slots, target
    return None


def _count(ctx: _Context) -> Candidate | None:
    t, idx, rnd = _TEMPLATE["count"], ctx.index, ctx.rnd
    for target in ctx.targets(t, ["0", *map(str, sorted(idx.by_count))], flat=True):
        for _ in range(_TRIES):
            if target == "0":
                x = _random_description(rnd.choice(_COUNT_MASKS), rnd)
                if x in idx.members:
                    continue
            else:
                x = rnd.choice(idx.by_count[int(target)])
            if ctx.fresh(t, slots := Slots(x=x), target):
                return t, slots, target
    return None


def _singled_out(idx: _Index, attr: str) -> dict[str, list[tuple[int, list[int]]]]:
    """Per value of ``attr``: the objects with it that a description without ``attr`` singles out, and the masks
    of those descriptions."""
    k = ORDER.index(attr)
    out: dict[str, list[tuple[int, list[int]]]] = {}
    for i, masks in enumerate(idx.unique):
        ok = [m for m in masks if not m >> k & 1]
        if ok:
            out.setdefault(idx.objects[i][k], []).append((i, ok))
    return out


def _query_attribute(ctx: _Context) -> Candidate | None:
    attr, idx, rnd = ctx.rnd.choice(ORDER), ctx.index, ctx.rnd
    t, by_value = _TEMPLATE[f"query_{attr}"], _singled_out(idx, attr)
    for target in ctx.targets(t, list(by_value)):
        for _ in range(_TRIES):
            i, masks = rnd.choice(by_value[target])
            if ctx.fresh(t, slots := Slots(x=idx.views[i][rnd.choice(masks)]), target):
                return t, slots, target
    return None


def _relate_query(ctx: _Context) -> Candidate | None:
    attr, idx, rnd = ctx.rnd.choice(ORDER), ctx.index, ctx.rnd
    t, k = _TEMPLATE[f"relate_query_{attr}"], ORDER.index(attr)
    by_value: dict[str, list[tuple[int, str, list[int], int]]] = {}
    for j, relation, group in idx.anchors:
        for i in group:
            by_value.setdefault(idx.objects[i][k], []).append((j, relation, group, i))
    for target in ctx.targets(t, list(by_value)):
        for _ in range(_TRIES):
            j, relation, group, i = rnd.choice(by_value[target])
            masks = idx.unique_within(i, group, 1 << k)
            if not masks:
                continue
            x, y = idx.views[j][rnd.choice(idx.unique[j])], idx.views[i][rnd.choice(masks)]
            if ctx.fresh(t, slots := Slots(x=x, y=y, relation=relation), target):
                return t, slots, target
    return None


def _relate_count(ctx: _Context) -> Candidate | None:
    t, idx, rnd = _TEMPLATE["relate_count"], ctx.index, ctx.rnd
    if not idx.anchors:
        return None
    anchors = rnd.sample(idx.anchors, min(_RELATE_ANCHORS, len(idx.anchors)))
    counts = []  # per anchor: description -> how many of its related objects it fits
    by_answer: dict[int, list[tuple[int, Description]]] = {}
    for a, (_, _, group) in enumerate(anchors):
        fits: dict[Description, int] = {}
        for o in group:
            for d in idx.views[o]:
                fits[d] = fits.get(d, 0) + 1
        counts.append(fits)
        for d, c in fits.items():
            by_answer.setdefault(c, []).append((a, d))
    for target in ctx.targets(t, ["0", *map(str, sorted(by_answer))], flat=True):
        for _ in range(_TRIES):
            if target == "0":  # something the scene holds, but not there
                a, y = rnd.randrange(len(anchors)), rnd.choice(idx.present)
                if y in counts[a]:
                    continue
            else:
                a, y = rnd.choice(by_answer[int(target)])
            j, relation, _ = anchors[a]
            x = idx.views[j][rnd.choice(idx.unique[j])]
            if _covers(x, y):  # only the anchor fits y: "how many red stars are left of the red star"
                continue
            if ctx.fresh(t, slots := Slots(x=x, y=y, relation=relation), target):
                return t, slots, target
    return None


_COMPARE: dict[str, Callable[[int, int], bool]] = {
    "greater_than": int.__gt__,
    "less_than": int.__lt__,
    "equal_integer": int.__eq__,
}


def _compare_count(ctx: _Context) -> Candidate | None:
    idx, rnd = ctx.index, ctx.rnd
    t = _TEMPLATE[rnd.choice(tuple(_COMPARE_IDS.values()))]
    for target in ctx.targets(t, ["yes", "no"]):
        for _ in range(2 * _TRIES):
            x, y = rnd.choice(idx.present), rnd.choice(idx.present)
            if rnd.random() < 0.2:  # one side absent from the scene
                y = _random_description(rnd.choice(_EXIST_MASKS), rnd)
            if rnd.random() < 0.5:
                x, y = y, x
            if _nested(x, y):
                continue
            holds = _COMPARE[t.compare](len(idx.members.get(x, ())), len(idx.members.get(y, ())))
            if ("yes" if holds else "no") == target and ctx.fresh(t, slots := Slots(x=x, y=y), target):
                return t, slots, target
    return None


def _compare_attribute(ctx: _Context) -> Candidate | None:
    attr, idx, rnd = ctx.rnd.choice(ORDER), ctx.index, ctx.rnd
    t, by_value = _TEMPLATE[f"same_{attr}"], _singled_out(idx, attr)
    values, pairs = list(by_value), [v for v, objects in by_value.items() if len(objects) > 1]
    available = (["yes"] if pairs else []) + (["no"] if len(values) > 1 else [])
    for target in ctx.targets(t, available):
        for _ in range(_TRIES):
            if target == "yes":
                (i, mi), (j, mj) = rnd.sample(by_value[rnd.choice(pairs)], 2)
            else:
                u, v = rnd.sample(values, 2)
                (i, mi), (j, mj) = rnd.choice(by_value[u]), rnd.choice(by_value[v])
            slots = Slots(x=idx.views[i][rnd.choice(mi)], y=idx.views[j][rnd.choice(mj)])
            if ctx.fresh(t, slots, target):
                return t, slots, target
    return None


def _place_verify(ctx: _Context) -> Candidate | None:
    t, place = _TEMPLATE["place_verify"], ctx.index.scene.place
    for target in ctx.targets(t, ["yes", "no"]):
        options = [place] if target == "yes" else [p for p in PLACES if p != place]
        ctx.rnd.shuffle(options)
        for p in options:
            if ctx.fresh(t, slots := Slots(place=p), target):
                return t, slots, target
    return None


def _place_query(ctx: _Context) -> Candidate | None:
    t = _TEMPLATE["place_query"]
    for target in ctx.targets(t, [ctx.index.scene.place]):
        if ctx.fresh(t, slots := Slots(), target):
            return t, slots, target
    return None


_SAMPLERS: dict[str, Callable[[_Context], Candidate | None]] = {
    "exist": _exist,
    "count": _count,
    "query_attribute": _query_attribute,
    "relate_query": _relate_query,
    "relate_count": _relate_count,
    "compare_count": _compare_count,
    "compare_attribute": _compare_attribute,
    "place_verify": _place_verify,
    "place_query": _place_query,
}
