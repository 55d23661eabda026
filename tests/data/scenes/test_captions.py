import json
import time

import numpy as np
import pytest

from mumo.data.scenes.captions import (
    PLACE_PHRASES,
    RELATION_PHRASES,
    CaptionPlan,
    Group,
    caption_plans,
    captions,
    check_plan,
    parse_caption,
    tags,
)
from mumo.data.scenes.graph import COLORS, MATERIALS, PLACES, RELATIONS, SHAPES, SIZES, Scene, SceneObject

SIDE = 128


def _object(shape: str, color: str, size: str = "small", material: str = "solid", center=(64, 64)) -> SceneObject:
    r = 12 if size == "large" else 6
    x, y = center
    return SceneObject(shape, color, size, material, (x, y), (x - r, y - r, x + r, y + r))


def _scene(place: str, objects: list[SceneObject]) -> Scene:
    return Scene(place, objects, SIDE, np.zeros((len(objects), SIDE, SIDE), dtype=bool))


def _random_object(rng: np.random.Generator) -> SceneObject:
    return _object(
        SHAPES[rng.integers(len(SHAPES))],
        list(COLORS)[rng.integers(len(COLORS))],
        SIZES[rng.integers(len(SIZES))],
        MATERIALS[rng.integers(len(MATERIALS))],
        (int(rng.integers(8, SIDE - 8)), int(rng.integers(8, SIDE - 8))),
    )


def _random_scene(rng: np.random.Generator) -> Scene:
    objects = [_random_object(rng) for _ in range(int(rng.integers(3, 10)))]
    return _scene(PLACES[rng.integers(len(PLACES))], objects)


@pytest.fixture(scope="module")
def generated() -> list[tuple[Scene, list[tuple[str, CaptionPlan]]]]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(500):
        scene = _random_scene(rng)
        out.append((scene, caption_plans(scene, rng, 5)))
    return out


def test_every_caption_parses_to_its_plan_and_is_true_of_the_graph(generated):
    for scene, pairs in generated:
        assert len(pairs) == 5
        for text, plan in pairs:
            parsed = parse_caption(text)
            assert parsed == plan, text
            assert check_plan(parsed, scene), text
            assert text == text.lower() and not text.endswith(".") and text == text.strip()


def test_captions_are_mostly_distinct_and_mention_the_place(generated):
    texts = [[t for t, _ in pairs] for _, pairs in generated]
    assert np.mean([len(set(t)) for t in texts]) >= 4.5
    everything = [t for ts in texts for t in ts]
    assert len(set(everything)) >= 0.95 * len(everything)
    mentioned = [sum(p.place is not None for _, p in pairs) for _, pairs in generated]
    assert np.mean(mentioned) >= 3
    plans = [p for _, pairs in generated for _, p in pairs]
    assert any(p.relation for p in plans) and any(p.total for p in plans) and any(len(p.groups) == 3 for p in plans)


def test_one_more_matching_object_makes_exact_counts_false(generated):
    rng = np.random.default_rng(1)
    flipped = 0
    for scene, pairs in generated[:100]:
        for _, plan in pairs:
            if not plan.groups:
                continue
            extra = _object(
                **{"shape": "circle", "color": "red", "size": "small", "material": "solid", **plan.groups[0].attributes}
            )
            grown = _scene(scene.place, [*scene.objects, extra])
            assert not check_plan(plan, grown)
            flipped += 1
        total_plans = [p for _, p in pairs if p.total is not None]
        for plan in total_plans:
            assert not check_plan(plan, _scene(scene.place, [*scene.objects, _random_object(rng)]))
    assert flipped > 100


def test_check_plan_on_a_hand_made_scene():
    scene = _scene(
        "beach",
        [
            _object("circle", "blue", "small", center=(20, 64)),
            _object("circle", "blue", "small", center=(40, 64)),
            _object("star", "red", "large", "striped", center=(100, 64)),
        ],
    )
    blue_circles, red_star = Group(2, {"color": "blue", "shape": "circle"}), Group(1, {"color": "red", "shape": "star"})
    assert check_plan(CaptionPlan("beach", [blue_circles, red_star], None, 3), scene)
    assert not check_plan(CaptionPlan("meadow", [blue_circles]), scene)
    assert not check_plan(CaptionPlan(None, [Group(1, {"shape": "circle"})]), scene)  # there are two
    assert not check_plan(CaptionPlan(total=4), scene)
    assert not check_plan(CaptionPlan(groups=[Group(1, {"color": "pink"})]), scene)
    assert not check_plan(CaptionPlan(groups=[Group(1, {})]), scene)
    star, circle = Group(1, {"shape": "star"}), Group(1, {"shape": "circle", "material": "striped"})
    assert check_plan(CaptionPlan(groups=[star, Group(1, {"shape": "circle", "size": "small"})]), scene) is False
    left = CaptionPlan(groups=[Group(1, {"color": "red"}), Group(1, {"size": "large"})], relation=(0, "left", 1))
    assert not check_plan(left, scene)  # the same object
    right = CaptionPlan(groups=[star, Group(1, {"size": "small", "shape": "circle"})], relation=(0, "right", 1))
    assert not check_plan(right, scene)  # two small circles: not a singleton
    scene = _scene("beach", [scene.objects[0], _object("square", "green", center=(40, 64)), scene.objects[2]])
    square = Group(1, {"shape": "square"})
    assert check_plan(CaptionPlan(groups=[star, square], relation=(0, "right", 1)), scene)
    assert not check_plan(CaptionPlan(groups=[star, square], relation=(0, "left", 1)), scene)
    assert not check_plan(CaptionPlan(groups=[star, circle], relation=(0, "right", 1)), scene)  # no striped circle
    assert not check_plan(CaptionPlan(groups=[star, square], relation=(0, "beside", 1)), scene)


def test_parse_caption_reads_the_grammar():
    assert parse_caption("two small blue circles and a red star on a beach") == CaptionPlan(
        "beach",
        [Group(2, {"color": "blue", "shape": "circle", "size": "small"}), Group(1, {"color": "red", "shape": "star"})],
    )
    assert parse_caption("a photo of a sandy beach with three objects") == CaptionPlan("beach", total=3)
    assert parse_caption("in the sky at night there is one grey cross") == CaptionPlan(
        "night sky", [Group(1, {"shape": "cross", "color": "gray"})]
    )
    assert parse_caption("a red star to the left of an object on the road") is None  # an object: no attribute
    plan = parse_caption("on the shore, a red star is under a plain heart")
    assert plan == CaptionPlan(
        "beach",
        [Group(1, {"color": "red", "shape": "star"}), Group(1, {"shape": "heart", "material": "solid"})],
        (0, "below", 1),
    )
    assert CaptionPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello world",
        "two pink circles on a beach",  # unknown colour
        "two blue circle on a beach",  # wrong plural
        "a blue circles on a beach",
        "two blue crosss",
        "an red star on a beach",  # wrong article
        "a red star on a beach.",  # trailing period
        "A red star on a beach",
        "a red star on a moon",  # unknown place
        "on the beach there are a red star",  # is/are
        "in the street there is five objects",
        "a red star is near two blue circles",  # relations are between single objects
        "two circles blue on a beach",  # word order
        "ten circles on a beach",
        "two objects and a red star",  # a group names something
        "two blue circles, and a red star",
        "a red star  on a beach",
    ],
)
def test_parse_caption_rejects_text_outside_the_grammar(text):
    assert parse_caption(text) is None


def test_vocabulary_tables_cover_the_world_without_clashes():
    assert set(PLACE_PHRASES) == set(PLACES) and set(RELATION_PHRASES) == set(RELATIONS)
    phrases = [phrase for ps in PLACE_PHRASES.values() for _, phrase in ps]
    assert len(phrases) == len(set(phrases))


def test_captions_are_deterministic_and_always_n():
    scene = _random_scene(np.random.default_rng(3))
    a = captions(scene, np.random.default_rng(7), 5)
    assert a == captions(scene, np.random.default_rng(7), 5)
    tiny = _scene("room", [_object("circle", "red")])
    many = captions(tiny, np.random.default_rng(0), 2000)  # more than the grammar says about one circle
    assert len(many) == 2000 and len(set(many)) < 2000
    assert all(check_plan(parse_caption(t), tiny) for t in many)
    with pytest.raises(ValueError, match="1-9"):
        captions(_scene("room", []), np.random.default_rng(0))


def test_tags_on_a_hand_made_scene():
    scene = _scene(
        "night sky",
        [
            _object("star", "yellow", "large", "striped"),
            _object("circle", "blue"),
            _object("circle", "red"),
            _object("star", "yellow"),
        ],
    )
    assert tags(scene) == ["night sky", "circle", "star", "red", "blue", "yellow", "small", "large", "solid", "striped"]
    other = _scene("room", [_object("heart", "gray", "small", "solid")])
    assert tags(other) == ["room", "heart", "gray", "small", "solid"]


def test_tags_order_is_fixed(generated):
    order = {w: k for k, w in enumerate([*SHAPES, *COLORS, *SIZES, *MATERIALS])}
    for scene, _ in generated:
        words = tags(scene)
        assert words[0] == scene.place and len(set(words)) == len(words)
        assert [order[w] for w in words[1:]] == sorted(order[w] for w in words[1:])
        assert set(words[1:]) == {v for o in scene.objects for v in o.attributes().values()}


def test_five_captions_and_tags_are_fast():
    rng = np.random.default_rng(5)
    scenes = [_random_scene(rng) for _ in range(200)]
    start = time.perf_counter()
    for scene in scenes:
        captions(scene, rng, 5)
        tags(scene)
    assert (time.perf_counter() - start) / len(scenes) < 0.005  # ~0.2 ms measured; loose for busy machines
