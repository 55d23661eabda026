"""Functional programs over a scene graph, as in CLEVR: their format, the executor and the objects they refer to.

A program is a JSON-ready list of nodes in execution order, each node
``{"function": name, "inputs": [indices of earlier nodes], "value_inputs": [strings]}``, the last node giving the
answer. Programs compare with ``==`` (also after a JSON round trip). The functions, with the types of their inputs
and of their output (``objects``: a set of objects, ``object``: one object):

=========================================== ===================== ============ ======================================
function                                    inputs                value_inputs output
=========================================== ===================== ============ ======================================
``scene``                                   --                    --           objects: every object of the scene
``filter_{shape,color,size,material}``      objects               a value      objects: those with that value
``unique``                                  objects               --           object: the only one (else an error)
``relate``                                  object                a relation   objects: those REL that object
``count``                                   objects               --           integer
``exist``                                   objects               --           boolean
``query_{shape,color,size,material}``       object                --           that attribute's value
``equal_{shape,color,size,material}``       two values            --           boolean
``greater_than, less_than, equal_integer``  two integers          --           boolean: first > (<, =) second
``query_place``                             objects (the scene)   --           place
``equal_place``                             place                 a place      boolean
=========================================== ===================== ============ ======================================

``relate(REL)`` applied to object j gives the objects i with "i is REL j" (:func:`~mumo.data.scenes.graph.related`).
Answers are strings from :data:`ANSWERS`: booleans are "yes"/"no", integers "0".."9".
"""

from __future__ import annotations

from mumo.data.scenes.graph import ATTRIBUTES, PLACES, RELATIONS, Scene, related

ANSWERS: tuple[str, ...] = (
    "yes",
    "no",
    *(str(k) for k in range(10)),
    *ATTRIBUTES["color"],
    *ATTRIBUTES["shape"],
    *ATTRIBUTES["size"],
    *ATTRIBUTES["material"],
    *PLACES,
)

Program = list[dict]  # [{"function": str, "inputs": list[int], "value_inputs": list[str]}, ...]

_OBJECT_TYPES = ("objects", "object")
# function -> (input types, number of value inputs, output type); attribute values have their attribute as type
_SIGNATURES: dict[str, tuple[tuple[str, ...], int, str]] = {
    "scene": ((), 0, "objects"),
    "unique": (("objects",), 0, "object"),
    "relate": (("object",), 1, "objects"),
    "count": (("objects",), 0, "integer"),
    "exist": (("objects",), 0, "boolean"),
    "greater_than": (("integer", "integer"), 0, "boolean"),
    "less_than": (("integer", "integer"), 0, "boolean"),
    "equal_integer": (("integer", "integer"), 0, "boolean"),
    "query_place": (("objects",), 0, "place"),
    "equal_place": (("place",), 1, "boolean"),
    **{f"filter_{a}": (("objects",), 1, "objects") for a in ATTRIBUTES},
    **{f"query_{a}": (("object",), 0, a) for a in ATTRIBUTES},
    **{f"equal_{a}": ((a, a), 0, "boolean") for a in ATTRIBUTES},
}
_VALUES: dict[str, tuple[str, ...]] = {  # the allowed value input of the functions that take one
    "relate": RELATIONS,
    "equal_place": PLACES,
    **{f"filter_{a}": v for a, v in ATTRIBUTES.items()},
}


class ProgramError(ValueError):
    """A program that is malformed, or ill-posed on a scene (``unique`` over none or several objects...)."""


def check_program(program: Program) -> list[str]:
    """The output type of each node of ``program``; raises :class:`ProgramError` if it is malformed.

    Malformed: not a non-empty list of nodes with exactly the keys ``function``, ``inputs`` and ``value_inputs``, an
    unknown function, inputs that are not earlier nodes or of the wrong type, a wrong value input, or a last node
    whose output is not an answer (a set of objects or an object).
    """
    if not isinstance(program, list) or not program:
        raise ProgramError("a program is a non-empty list of nodes")
    types: list[str] = []
    for k, node in enumerate(program):
        if not isinstance(node, dict) or set(node) != {"function", "inputs", "value_inputs"}:
            raise ProgramError(f"node {k}: a node is a dict with keys function, inputs and value_inputs")
        function, inputs, values = node["function"], node["inputs"], node["value_inputs"]
        if function not in _SIGNATURES:
            raise ProgramError(f"node {k}: unknown function {function!r}")
        wanted, n_values, output = _SIGNATURES[function]
        if not isinstance(inputs, list) or any(type(i) is not int or not 0 <= i < k for i in inputs):
            raise ProgramError(f"node {k} ({function}): inputs must be indices of earlier nodes, not {inputs!r}")
        got = tuple(types[i] for i in inputs)
        if got != wanted:
            raise ProgramError(f"node {k} ({function}): takes inputs of types {wanted}, got {got}")
        if not isinstance(values, list) or len(values) != n_values:
            raise ProgramError(f"node {k} ({function}): takes {n_values} value input(s), got {values!r}")
        if n_values and values[0] not in _VALUES[function]:
            raise ProgramError(f"node {k} ({function}): unknown value {values[0]!r}")
        types.append(output)
    if types[-1] in _OBJECT_TYPES:
        raise ProgramError(f"the last node ({program[-1]['function']}) gives {types[-1]}, not an answer")
    return types


def execute(program: Program, scene: Scene) -> str:
    """The answer (a string of :data:`ANSWERS`) of ``program`` on ``scene``.

    Raises:
        ProgramError: the program is malformed, or ill-posed on the scene (``unique`` over 0 or 2+ objects).
    """
    return _answer(_run(program, scene)[-1])


def referred_objects(program: Program, scene: Scene) -> list[int]:
    """The objects (sorted indices) the question refers to: what an explanation map should look at.

    These are the objects of every set or object that a node passes on to something other than a filter (a
    ``unique``, ``relate``, ``count``, ``exist`` or ``query``), or that ends the program: "what colour is the object
    left of the large star" refers to the large star and to the object left of it, "how many red circles are
    there" to the red circles, "is there a red star" to the red stars (none if the answer is no), a place question
    to none. Raises :class:`ProgramError` like :func:`execute`.
    """
    return evaluate(program, scene)[1]


def evaluate(program: Program, scene: Scene) -> tuple[str, list[int]]:
    """``(execute(program, scene), referred_objects(program, scene))`` in one run."""
    types = check_program(program)
    outputs = _run(program, scene, types)
    passed_on = [False] * len(program)  # to something other than a filter (or to nothing: the last node)
    passed_on[-1] = True
    for node in program:
        if not node["function"].startswith("filter_") and node["function"] != "query_place":
            for i in node["inputs"]:
                passed_on[i] = True
    referred: set[int] = set()
    for out, kind, used in zip(outputs, types, passed_on, strict=True):
        if used and kind == "objects":
            referred.update(out)
        elif used and kind == "object":
            referred.add(out)
    return _answer(outputs[-1]), sorted(referred)


def reasoning_steps(program: Program, scene: Scene) -> tuple[list[int], list[int]]:
    """Where a question's reasoning looks first and last: two sorted object lists.

    The object sets a program passes on (as in :func:`evaluate`), in program order; step 0 is the first, step 1
    the last: for "what colour is the object left of the large star" the large star, then the object left of it;
    for a count or attribute comparison the objects of its first description, then of its second; for a question
    about one description its objects twice; for a place question nothing. What attention is trained towards with
    ``objective.attention_loss=masks``. Raises :class:`ProgramError` like :func:`execute`.
    """
    types = check_program(program)
    outputs = _run(program, scene, types)
    sets: list[list[int]] = []
    for node in program:
        if node["function"].startswith("filter_") or node["function"] == "query_place":
            continue
        for i in node["inputs"]:
            if types[i] == "objects":
                sets.append(sorted(outputs[i]))
            elif types[i] == "object":
                sets.append([outputs[i]])
    return (sets[0], sets[-1]) if sets else ([], [])


def _run(program: Program, scene: Scene, types: list[str] | None = None) -> list:
    """The output of every node (objects: tuples of indices, object: an index)."""
    if types is None:
        check_program(program)
    outputs: list = []
    for k, node in enumerate(program):
        function = node["function"]
        args = [outputs[i] for i in node["inputs"]]
        value = node["value_inputs"][0] if node["value_inputs"] else None
        outputs.append(_apply(function, args, value, scene, k))
    return outputs


def _apply(function: str, args: list, value: str | None, scene: Scene, k: int):
    if function == "scene":
        return tuple(range(len(scene.objects)))
    if function.startswith("filter_"):
        attr = function[len("filter_") :]
        return tuple(i for i in args[0] if getattr(scene.objects[i], attr) == value)
    if function == "unique":
        if len(args[0]) != 1:
            raise ProgramError(f"node {k} (unique): {len(args[0])} objects match, not exactly one")
        return args[0][0]
    if function == "relate":
        return tuple(related(scene, value, args[0]))
    if function == "count":
        return len(args[0])
    if function == "exist":
        return bool(args[0])
    if function.startswith("query_"):
        return scene.place if function == "query_place" else getattr(scene.objects[args[0]], function[len("query_") :])
    if function == "equal_place":
        return args[0] == value
    if function == "greater_than":
        return args[0] > args[1]
    if function == "less_than":
        return args[0] < args[1]
    return args[0] == args[1]  # equal_integer, equal_{attribute}


def _answer(value: bool | int | str) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        if not 0 <= value <= 9:
            raise ProgramError(f"a count of {value} is outside the answers 0..9")
        return str(value)
    return value
