"""Questions about a scene (mumo scenes): well-posed, answer-balanced sampling over the grammar of
:mod:`~mumo.data.scenes.grammar`, which this module re-exports with the executor (the public question API).

:func:`sample_questions` draws well-posed questions for an image, keeping the answers of each template close to
uniform with a :class:`Balancer` shared by the images of a chunk.

Balancing (:class:`Balancer`): answer-first sampling. For a template, the answers this scene can give are tried
from the least used so far, and an answer more than a small slack above the least used one (over the answers seen
so far, or for counts over those this scene can give) is refused. A program, and a question shape (which
attributes it names), is refused an answer it already gave more often than any other, so the same question string
is answered "yes" about as often as "no". Sampling uses ``rng`` once per image (to seed a ``random.Random``).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from dataclasses import asdict, dataclass, field
from functools import cached_property

import numpy as np

from mumo.data.scenes.grammar import (
    COMPARE_TEMPLATES,
    FAMILIES,
    ORDER,
    PLACE_FAMILIES,
    TEMPLATE,
    TEMPLATES,
    Description,
    Slots,
    Template,
    build_program,
    decode,
    parse,
    render,
    render_program,
    render_with,
)
from mumo.data.scenes.graph import ATTRIBUTES, PLACES, RELATIONS, Scene
from mumo.data.scenes.program import ANSWERS, Program, ProgramError, evaluate, execute, referred_objects

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

QUESTIONS_PER_IMAGE = 10
PLACE_RATE = 0.6  # chance that an image gets a question of each place family (at most one each)

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
        return Question(render_with(template, slots, self.rnd), template.family, template.id, program, answer, objects)


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
    t, idx, rnd = TEMPLATE["exist"], ctx.index, ctx.rnd
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
    t, idx, rnd = TEMPLATE["count"], ctx.index, ctx.rnd
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
    t, by_value = TEMPLATE[f"query_{attr}"], _singled_out(idx, attr)
    for target in ctx.targets(t, list(by_value)):
        for _ in range(_TRIES):
            i, masks = rnd.choice(by_value[target])
            if ctx.fresh(t, slots := Slots(x=idx.views[i][rnd.choice(masks)]), target):
                return t, slots, target
    return None


def _relate_query(ctx: _Context) -> Candidate | None:
    attr, idx, rnd = ctx.rnd.choice(ORDER), ctx.index, ctx.rnd
    t, k = TEMPLATE[f"relate_query_{attr}"], ORDER.index(attr)
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
    t, idx, rnd = TEMPLATE["relate_count"], ctx.index, ctx.rnd
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
    t = TEMPLATE[rnd.choice(tuple(COMPARE_TEMPLATES.values()))]
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
    t, by_value = TEMPLATE[f"same_{attr}"], _singled_out(idx, attr)
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
    t, place = TEMPLATE["place_verify"], ctx.index.scene.place
    for target in ctx.targets(t, ["yes", "no"]):
        options = [place] if target == "yes" else [p for p in PLACES if p != place]
        ctx.rnd.shuffle(options)
        for p in options:
            if ctx.fresh(t, slots := Slots(place=p), target):
                return t, slots, target
    return None


def _place_query(ctx: _Context) -> Candidate | None:
    t = TEMPLATE["place_query"]
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
