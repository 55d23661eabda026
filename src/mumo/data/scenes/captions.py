"""Captions and tags of a scene, the way COCO gives them: 5 captions per image in different wordings, each true.

A caption is first a :class:`CaptionPlan` (what it claims), then text from a small caption grammar with paraphrases
and synonyms; :func:`parse_caption` maps every text the grammar produces back to its plan, and :func:`check_plan`
checks a plan against the scene graph without knowing how it was built. So "every caption is true of its scene" is
tested honestly: parse the text, then check the parsed plan.

Plan semantics (:func:`check_plan`), all of which must hold:

- ``place``: ``None`` (no place mentioned) or the scene's place;
- ``groups``: each ``Group(count, attributes)`` claims that EXACTLY ``count`` objects of the scene have all of
  ``attributes`` (a non-empty subset of ``{"shape", "color", "size", "material"}``): "two blue circles" is false if
  there are three blue circles. Groups may overlap in a plan; the generator only makes disjoint ones;
- ``relation``: ``None`` or ``(a, relation, b)``, indices into ``groups`` with ``a != b``, both groups of count 1;
  it claims "the unique object of group a is ``relation`` the unique object of group b", i.e. the pair is in
  ``scene.relations[relation]``;
- ``total``: ``None`` or exactly how many objects the scene holds.

Text conventions: lowercase, no trailing period (commas inside), counts as words ("a"/"an"/"one" ... "nine"),
adjectives in the order size, material, colour, then the noun (a shape, or "object"/"thing"/"shape" when a group
names no shape). Synonyms: "grey" for gray, "plain" for solid, several phrases per place (``PLACE_PHRASES``) and per
relation (``RELATION_PHRASES``).
"""

from __future__ import annotations

import re
from bisect import bisect
from dataclasses import dataclass, field
from itertools import accumulate
from typing import NamedTuple

import numpy as np

from mumo.data.scenes.graph import ATTRIBUTES, COLORS, MATERIALS, RELATIONS, SHAPES, SIZES, Scene

# ---- the lexicon -------------------------------------------------------------------------------------------------

COUNT_WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine")  # count 1..9
OBJECT_NOUNS = ("object", "thing", "shape")  # the noun of a group that names no shape, and of a total count
PHOTO_WORDS = ("a photo of", "a picture of", "an image of")
COLOR_WORDS: dict[str, tuple[str, ...]] = {c: ("gray", "grey") if c == "gray" else (c,) for c in COLORS}
MATERIAL_WORDS: dict[str, tuple[str, ...]] = {"solid": ("solid", "plain"), "striped": ("striped",)}
# (preposition, noun phrase) per place: "on a sandy beach", "a photo of a sandy beach"
PLACE_PHRASES: dict[str, tuple[tuple[str, str], ...]] = {
    "beach": (
        ("on", "a beach"),
        ("on", "the beach"),
        ("on", "a sandy beach"),
        ("at", "the seaside"),
        ("on", "the shore"),
    ),
    "meadow": (("in", "a meadow"), ("in", "the meadow"), ("in", "a grassy meadow"), ("in", "a field of grass")),
    "desert": (("in", "a desert"), ("in", "the desert"), ("in", "an arid desert"), ("among", "the sand dunes")),
    "snowfield": (("on", "a snowfield"), ("on", "a snowy field"), ("on", "a snowy plain"), ("on", "a field of snow")),
    "night sky": (("in", "the night sky"), ("in", "a starry sky"), ("in", "the sky at night"), ("in", "a dark sky")),
    "forest": (("in", "a forest"), ("in", "the woods"), ("in", "a dense forest"), ("in", "the forest")),
    "room": (("in", "a room"), ("in", "the room"), ("in", "an indoor room"), ("inside", "an empty room")),
    "street": (("on", "a street"), ("on", "a city street"), ("on", "the road"), ("in", "the street")),
}
RELATION_PHRASES: dict[str, tuple[str, ...]] = {
    "left": ("left of", "to the left of", "on the left of"),
    "right": ("right of", "to the right of", "on the right of"),
    "above": ("above", "over"),
    "below": ("below", "under", "beneath"),
    "near": ("near", "next to", "close to"),
}
_ADJECTIVE_ORDER = ("size", "material", "color")  # then the noun
_GROUP_KEYS = (  # (attributes a group names, weight): which ways of describing a group the generator uses
    (("shape",), 2.0),
    (("color", "shape"), 4.0),
    (("size", "color", "shape"), 2.0),
    (("size", "shape"), 1.0),
    (("material", "color", "shape"), 1.0),
    (("size", "material", "color", "shape"), 0.5),
    (("color",), 1.0),
)
_RELATION_KEYS = ((("color", "shape"), 4.0), (("shape",), 2.0), (("size", "color", "shape"), 2.0), (("color",), 1.0))
_N_GROUPS = ((1, 3.0), (2, 4.0), (3, 2.0))  # how many groups a caption lists
_TRIES = 8  # per caption wanted, to find distinct texts

# Caption forms (template, weight): {at} "on a beach", {place} "a beach", {photo} "a photo of", {groups} "two blue
# circles and a red star", {total} "five objects", {a} {rel} {b} "a red star left of a blue circle", {be} is/are
# agreeing with the first group, {be_total} with the total.
_FORMS = (
    ("{groups} {at}", 3.0),
    ("{at} there {be} {groups}", 2.0),
    ("{place} with {groups}", 2.0),
    ("{photo} {place} with {groups}", 2.0),
    ("{photo} {place} with {total}", 1.0),
    ("{total} {at}", 1.0),
    ("{at} there {be_total} {total}", 1.0),
    ("{total} {at} including {groups}", 1.0),
    ("{a} {rel} {b} {at}", 1.5),
    ("{place} with {a} {rel} {b}", 1.5),
    ("{at}, {a} is {rel} {b}", 1.0),
    ("{photo} {a} {rel} {b} {at}", 1.0),
    ("{groups}", 1.0),
    ("there {be} {groups}", 1.0),
    ("{photo} {groups}", 0.5),
    ("{photo} {total}", 0.5),
    ("{a} {rel} {b}", 0.5),
    ("{a} is {rel} {b}", 0.5),
)


# ---- the plan ----------------------------------------------------------------------------------------------------


class Group(NamedTuple):
    """Exactly ``count`` objects have all of ``attributes`` (e.g. ``{"color": "blue", "shape": "circle"}``)."""

    count: int
    attributes: dict[str, str]


@dataclass
class CaptionPlan:
    """What a caption claims about a scene; the semantics are in the module docstring and :func:`check_plan`."""

    place: str | None = None  # the place, or None when the caption names none
    groups: list[Group] = field(default_factory=list)  # in the order the caption names them
    relation: tuple[int, str, int] | None = None  # (group a, relation, group b): "a is REL b", singleton groups
    total: int | None = None  # how many objects the scene holds, or None when not claimed

    def to_dict(self) -> dict:
        """JSON-ready data: groups as ``{"count", "attributes"}``, the relation as a list."""
        return {
            "place": self.place,
            "groups": [{"count": g.count, "attributes": dict(g.attributes)} for g in self.groups],
            "relation": list(self.relation) if self.relation is not None else None,
            "total": self.total,
        }

    @classmethod
    def from_dict(cls, d: dict) -> CaptionPlan:
        groups = [Group(int(g["count"]), dict(g["attributes"])) for g in d["groups"]]
        relation = tuple(d["relation"]) if d.get("relation") is not None else None
        return cls(d.get("place"), groups, relation, d.get("total"))


def check_plan(plan: CaptionPlan, scene: Scene) -> bool:
    """Whether every claim of ``plan`` holds in ``scene``'s graph (an empty plan claims nothing and holds).

    Args:
        plan: the claims, however they were made (parsed from text, or built by hand).
        scene: the scene graph to check them against.

    Returns:
        False if any claim is false or malformed (unknown attribute, relation between non-singleton groups, ...).
    """
    if plan.place is not None and plan.place != scene.place:
        return False
    if plan.total is not None and plan.total != len(scene.objects):
        return False
    members = [_matching(scene, g.attributes) if _well_formed(g) else None for g in plan.groups]
    if any(m is None or len(m) != g.count for m, g in zip(members, plan.groups, strict=True)):
        return False
    return plan.relation is None or _relation_holds(plan.relation, members, scene)


def _well_formed(group: Group) -> bool:
    attrs = group.attributes
    valid = all(k in ATTRIBUTES and v in ATTRIBUTES[k] for k, v in attrs.items())
    return isinstance(group.count, int) and group.count >= 1 and bool(attrs) and valid


def _matching(scene: Scene, attributes: dict[str, str]) -> list[int]:
    return [i for i, o in enumerate(scene.objects) if all(getattr(o, k) == v for k, v in attributes.items())]


def _relation_holds(relation: tuple[int, str, int], members: list[list[int]], scene: Scene) -> bool:
    a, rel, b = relation
    n = len(members)
    if rel not in RELATIONS or not (0 <= a < n and 0 <= b < n) or a == b:
        return False
    if len(members[a]) != 1 or len(members[b]) != 1:
        return False
    return (members[a][0], members[b][0]) in scene.relations[rel]


# ---- tags --------------------------------------------------------------------------------------------------------


def tags(scene: Scene) -> list[str]:
    """The image-level tags: the place, then the shapes, colours, sizes and materials present.

    Each part is in the vocabulary's order (``SHAPES``, ``COLORS``, ``SIZES``, ``MATERIALS`` of ``graph``), e.g.
    ``["night sky", "circle", "star", "red", "blue", "small", "solid", "striped"]``; no word repeats.
    """
    out = [scene.place]
    for key, values in (("shape", SHAPES), ("color", tuple(COLORS)), ("size", SIZES), ("material", MATERIALS)):
        present = {getattr(o, key) for o in scene.objects}
        out += [v for v in values if v in present]
    return out


# ---- generation --------------------------------------------------------------------------------------------------


def captions(scene: Scene, rng: np.random.Generator, n: int = 5) -> list[str]:
    """``n`` captions of ``scene``, each true of its graph; distinct where the grammar allows (see
    :func:`caption_plans`)."""
    return [text for text, _ in caption_plans(scene, rng, n)]


def caption_plans(scene: Scene, rng: np.random.Generator, n: int = 5) -> list[tuple[str, CaptionPlan]]:
    """``n`` (caption, plan) pairs of ``scene``; ``parse_caption(caption) == plan`` and ``check_plan`` holds.

    Captions are distinct unless ``n * 8`` draws could not find ``n`` distinct texts (only for tiny or
    degenerate scenes); then the list is filled with repeats, so there are always ``n``.

    Args:
        scene: the scene (3-9 objects, as the generator makes them; 1-9 work).
        rng: the only source of randomness: the same generator state gives the same captions.
        n: how many captions.

    Raises:
        ValueError: if the scene has no objects or more than 9 (counts are words "one" ... "nine").
    """
    if not 1 <= len(scene.objects) <= len(COUNT_WORDS):
        raise ValueError(f"captions need 1-9 objects, the scene has {len(scene.objects)}")
    ctx = _Context(scene)
    out: list[tuple[str, CaptionPlan]] = []
    seen: set[str] = set()
    for _ in range(n * _TRIES):
        if len(out) == n:
            break
        text, plan = _caption(ctx, rng)
        if text not in seen:
            seen.add(text)
            out.append((text, plan))
    while len(out) < n:
        out.append(_caption(ctx, rng))
    return out


class _Context:
    """What one scene's captions share: object saliences, groups per description, relation candidates."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        self.salience = [2.0 if o.size == "large" else 1.0 for o in scene.objects]
        self._cells: dict[tuple[str, ...], list[tuple[dict[str, str], list[int]]]] = {}
        self._triples: tuple[list[tuple[str, int, int]], list[float]] | None = None

    def cells(self, keys: tuple[str, ...]) -> list[tuple[dict[str, str], list[int]]]:
        """The scene's objects split by their values of ``keys``: (attributes, member indices), first seen first."""
        if keys not in self._cells:
            ordered = tuple(k for k in ATTRIBUTES if k in keys)  # attribute dicts in one key order
            by_value: dict[tuple[str, ...], list[int]] = {}
            for i, o in enumerate(self.scene.objects):
                by_value.setdefault(tuple(getattr(o, k) for k in ordered), []).append(i)
            self._cells[keys] = [(dict(zip(ordered, v, strict=True)), m) for v, m in by_value.items()]
        return self._cells[keys]

    def unique_keys(self, i: int) -> list[tuple[tuple[str, ...], float]]:
        """The descriptions (with weights) that single out object ``i``."""
        return [(keys, w) for keys, w in _RELATION_KEYS if any(m == [i] for _, m in self.cells(keys))]

    def triples(self) -> tuple[list[tuple[str, int, int]], list[float]]:
        """Every (relation, i, j) of the graph with both objects describable alone, and cumulative weights."""
        if self._triples is None:
            describable = [bool(self.unique_keys(i)) for i in range(len(self.scene.objects))]
            found = [
                (r, i, j) for r in RELATIONS for i, j in self.scene.relations[r] if describable[i] and describable[j]
            ]
            weights = [self.salience[i] * self.salience[j] for _, i, j in found]
            self._triples = found, list(accumulate(weights))
        return self._triples


def _pick(rng: np.random.Generator, items: tuple | list):
    return items[int(rng.random() * len(items))]


def _pick_weighted(rng: np.random.Generator, items: tuple | list, cumulative: list[float]):
    return items[min(bisect(cumulative, rng.random() * cumulative[-1]), len(items) - 1)]


def _cumulative(pairs: tuple) -> list[float]:
    return list(accumulate(w for _, w in pairs))


_FORM_CUM = _cumulative(_FORMS)
_GROUP_KEYS_CUM = _cumulative(_GROUP_KEYS)
_N_GROUPS_CUM = _cumulative(_N_GROUPS)


def _caption(ctx: _Context, rng: np.random.Generator) -> tuple[str, CaptionPlan]:
    """One caption: a form, then a plan that fills it, then the words."""
    while True:
        form = _pick_weighted(rng, _FORMS, _FORM_CUM)[0]
        if "{rel}" in form and not ctx.triples()[0]:
            continue  # no pair of singly describable objects is related: another form
        return _fill(form, ctx, rng)


def _fill(form: str, ctx: _Context, rng: np.random.Generator) -> tuple[str, CaptionPlan]:
    scene, slots, plan = ctx.scene, {}, CaptionPlan()
    if "{at}" in form or "{place}" in form:
        prep, phrase = _pick(rng, PLACE_PHRASES[scene.place])
        slots["at"], slots["place"], plan.place = f"{prep} {phrase}", phrase, scene.place
    slots["photo"] = _pick(rng, PHOTO_WORDS)
    if "{total}" in form:
        plan.total = len(scene.objects)
        slots["total"], slots["be_total"] = _total_phrase(plan.total, rng), _be(plan.total)
    if "{groups}" in form:
        plan.groups = _choose_groups(ctx, rng, max_groups=2 if "{total}" in form else 3)
        slots["groups"] = _join([_noun_phrase(g, rng) for g in plan.groups])
        slots["be"] = _be(plan.groups[0].count)
    if "{rel}" in form:
        rel, i, j = _choose_triple(ctx, rng)
        plan.groups = [Group(1, _describe_alone(ctx, i, rng)), Group(1, _describe_alone(ctx, j, rng))]
        plan.relation = (0, rel, 1)
        slots["a"], slots["b"] = (_noun_phrase(g, rng) for g in plan.groups)
        slots["rel"] = _pick(rng, RELATION_PHRASES[rel])
    return form.format(**slots), plan


def _choose_groups(ctx: _Context, rng: np.random.Generator, max_groups: int) -> list[Group]:
    """1-3 disjoint groups, the more salient (more objects, larger ones) the likelier, most salient first.

    The first draw always finds a group; a later one whose description only finds used objects is skipped.
    """
    wanted = min(_pick_weighted(rng, _N_GROUPS, _N_GROUPS_CUM)[0], max_groups)
    chosen: list[tuple[float, Group]] = []
    used: set[int] = set()
    for _ in range(wanted):
        keys = _pick_weighted(rng, _GROUP_KEYS, _GROUP_KEYS_CUM)[0]
        free = [(attrs, m) for attrs, m in ctx.cells(keys) if used.isdisjoint(m)]
        if not free:
            continue
        saliences = [sum(ctx.salience[i] for i in m) for _, m in free]
        attrs, members = _pick_weighted(rng, free, list(accumulate(s * s for s in saliences)))
        used.update(members)
        chosen.append((sum(ctx.salience[i] for i in members), Group(len(members), attrs)))
    chosen.sort(key=lambda sg: -sg[0])  # stable: ties keep drawing order
    return [g for _, g in chosen]


def _choose_triple(ctx: _Context, rng: np.random.Generator) -> tuple[str, int, int]:
    found, cumulative = ctx.triples()
    return _pick_weighted(rng, found, cumulative)


def _describe_alone(ctx: _Context, i: int, rng: np.random.Generator) -> dict[str, str]:
    options = ctx.unique_keys(i)
    keys = _pick_weighted(rng, options, _cumulative(tuple(options)))[0]
    obj = ctx.scene.objects[i]
    return {k: getattr(obj, k) for k in ATTRIBUTES if k in keys}


def _plural(noun: str) -> str:
    return noun + "es" if noun.endswith(("s", "x")) else noun + "s"


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _be(count: int) -> str:
    return "is" if count == 1 else "are"


def _noun_phrase(group: Group, rng: np.random.Generator) -> str:
    """ "two small striped blue circles", "a red object", "one heart"."""
    count, attrs = group
    words = []
    if "size" in attrs:
        words.append(attrs["size"])
    if "material" in attrs:
        words.append(_pick(rng, MATERIAL_WORDS[attrs["material"]]))
    if "color" in attrs:
        words.append(_pick(rng, COLOR_WORDS[attrs["color"]]))
    noun = attrs.get("shape") or _pick(rng, OBJECT_NOUNS)
    words.append(noun if count == 1 else _plural(noun))
    if count > 1:
        return f"{COUNT_WORDS[count - 1]} {' '.join(words)}"
    return f"{'one' if rng.random() < 0.2 else _article(words[0])} {' '.join(words)}"


def _total_phrase(total: int, rng: np.random.Generator) -> str:
    noun = _pick(rng, OBJECT_NOUNS)
    return f"{COUNT_WORDS[total - 1]} {noun if total == 1 else _plural(noun)}"


def _join(phrases: list[str]) -> str:
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]


# ---- parsing -----------------------------------------------------------------------------------------------------


def parse_caption(text: str) -> CaptionPlan | None:
    """The plan of a caption the grammar produces, or None for any other text (unknown words, wrong plural or
    article, disagreeing "is"/"are", capitals, a trailing period, ...)."""
    for regex in _FORM_REGEXES:
        m = regex.fullmatch(text)
        if m is not None:
            plan = _plan_of(m.groupdict())
            if plan is not None:
                return plan
    return None


def _alternation(words) -> str:
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


_SINGULAR_NOUNS = {**{s: s for s in SHAPES}, **{n: None for n in OBJECT_NOUNS}}  # noun -> shape (None: no shape)
_PLURAL_NOUNS = {_plural(n): s for n, s in _SINGULAR_NOUNS.items()}
_ADJECTIVES = {
    "size": {s: s for s in SIZES},
    "material": {w: m for m, ws in MATERIAL_WORDS.items() for w in ws},
    "color": {w: c for c, ws in COLOR_WORDS.items() for w in ws},
}
_AT = {f"{prep} {phrase}": p for p, phrases in PLACE_PHRASES.items() for prep, phrase in phrases}
_PLACE = {phrase: p for p, phrases in PLACE_PHRASES.items() for _, phrase in phrases}
_RELATION = {w: r for r, ws in RELATION_PHRASES.items() for w in ws}
_NP = (
    f"(?:a|an|{_alternation(COUNT_WORDS)})"
    + "".join(f"(?: (?:{_alternation(_ADJECTIVES[k])}))?" for k in _ADJECTIVE_ORDER)
    + f" (?:{_alternation([*_SINGULAR_NOUNS, *_PLURAL_NOUNS])})"
)
_SLOTS = {
    "at": _alternation(_AT),
    "place": _alternation(_PLACE),
    "photo": _alternation(PHOTO_WORDS),
    "groups": f"{_NP}(?:(?:, {_NP})* and {_NP})?",
    "total": f"(?:{_alternation(COUNT_WORDS)}) (?:{_alternation([*OBJECT_NOUNS, *map(_plural, OBJECT_NOUNS)])})",
    "a": _NP,
    "b": _NP,
    "rel": _alternation(_RELATION),
    "be": "is|are",
    "be_total": "is|are",
}


def _form_regex(form: str) -> re.Pattern:
    parts = re.split(r"\{(\w+)\}", form)  # literal, slot, literal, slot, ...
    return re.compile("".join(re.escape(p) if k % 2 == 0 else f"(?P<{p}>{_SLOTS[p]})" for k, p in enumerate(parts)))


_FORM_REGEXES = tuple(_form_regex(form) for form, _ in _FORMS)


def _plan_of(slots: dict[str, str]) -> CaptionPlan | None:
    """The plan of a form's matched slots, or None when they break agreement or name nothing."""
    plan = CaptionPlan()
    if "at" in slots:
        plan.place = _AT[slots["at"]]
    if "place" in slots:
        plan.place = _PLACE[slots["place"]]
    if "total" in slots:
        plan.total = _parse_total(slots["total"])
        if plan.total is None or ("be_total" in slots and slots["be_total"] != _be(plan.total)):
            return None
    if "groups" in slots:
        groups = [_parse_noun_phrase(p) for p in re.split(r", | and ", slots["groups"])]
        if any(g is None for g in groups) or ("be" in slots and slots["be"] != _be(groups[0].count)):
            return None
        plan.groups = groups
    if "rel" in slots:
        a, b = _parse_noun_phrase(slots["a"]), _parse_noun_phrase(slots["b"])
        if a is None or b is None or a.count != 1 or b.count != 1:
            return None
        plan.groups, plan.relation = [a, b], (0, _RELATION[slots["rel"]], 1)
    return plan


def _parse_total(text: str) -> int | None:
    """The count of "five objects" (with number agreement), or None."""
    word, noun = text.split(" ")
    count = COUNT_WORDS.index(word) + 1
    return count if (noun in OBJECT_NOUNS) == (count == 1) else None


def _parse_noun_phrase(text: str) -> Group | None:
    """``Group`` of "two small blue circles" (with agreement of article, number and noun), or None."""
    first, *rest, noun = text.split(" ")
    has_article = first in ("a", "an")
    if has_article and first != _article((rest or [noun])[0]):
        return None
    attrs: dict[str, str] = {}
    for key in _ADJECTIVE_ORDER:
        if rest and rest[0] in _ADJECTIVES[key]:
            attrs[key] = _ADJECTIVES[key][rest.pop(0)]
    if rest:
        return None
    plural = noun in _PLURAL_NOUNS
    shape = _PLURAL_NOUNS[noun] if plural else _SINGULAR_NOUNS.get(noun)
    count = 1 if has_article else COUNT_WORDS.index(first) + 1
    if plural != (count > 1) or (shape is None and not attrs):
        return None
    if shape is not None:
        attrs["shape"] = shape
    return Group(count, {k: attrs[k] for k in ATTRIBUTES if k in attrs})
