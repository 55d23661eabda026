"""Caption metrics for generated text (visual question generation, captioning), as the papers report them.

BLEU-1..4, METEOR 1.5, ROUGE-L and CIDEr-D are computed by pycocoevalcap 1.2 (the coco-caption code): BLEU with the
"closest" reference length, METEOR 1.5 from its Java jar (``-Xmx2G``, ``-l en -norm``), ROUGE-L with β = 1.2, CIDEr-D
with σ = 6 and clipping. Texts are first tokenised as coco-caption does (Stanford PTBTokenizer 3.4.1, lower-cased,
punctuation dropped). CIDEr's IDF comes from the references being evaluated, so score a whole split at once, never
batch by batch. SPICE is left out (it downloads models and fails on Java 17).

Java runs METEOR and the PTB tokenizer. Without it METEOR is reported missing (``JAVA_MISSING``, in
``CaptionScores.missing``) and ``simple_tokenize``, a pure-Python copy of the tokenizer, stands in; the other metrics
are still computed, and equal the Java ones wherever the two tokenizers agree (they do on coco-caption's example).

Inputs are dicts keyed by any hashable id (an image id, a question id): ``candidates[k]`` the generated text for item
``k`` and ``references[k]`` its human texts, one or more. Diversity (``distinct_n``, ``distinct_per_image``) is plain
counting and needs neither Java nor pycocoevalcap.
"""

from __future__ import annotations

import contextlib
import math
import re
import shutil
import subprocess
import tempfile
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from mumo.errors import MumoError

K = TypeVar("K", bound=Hashable)

METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr")
JAVA_MISSING = (
    "METEOR 1.5 and the PTB tokenizer need Java, which is not on PATH: install it with "
    "`apt-get install -y default-jre-headless` (or put any JRE >= 8 on PATH)"
)
METEOR_OFF = "not asked for (meteor=False)"


# ---------------------------------------------------------------------------------------------------------- Java


def java_available() -> bool:
    """True when a working ``java`` is on PATH (it runs ``java -version``: macOS ships a stub without a JRE)."""
    java = shutil.which("java")
    if java is None:
        return False
    try:
        return subprocess.run([java, "-version"], capture_output=True, timeout=60, check=False).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


# ---------------------------------------------------------------------------------------------------------- tokens


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Line breaks other than "\n" that Java's tokenizer also breaks lines at: each would shift every later sentence.
_LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
# What the PTB lexer normalises before splitting (quotes become `` '' ` ', all of them dropped later).
_NORMALISE = {"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2018": "'", "\u2019": "'", "\u201a": "'",
              "\u2026": " ... ", "\u2012": " -- ", "\u2013": " -- ", "\u2014": " -- ", "\u2015": " -- ",
              "\u20ac": "$", "\u00a3": "#", "\u00a0": " ", "&amp;": "&"}  # fmt: skip
_NORMALISE_RE = re.compile("|".join(map(re.escape, _NORMALISE)))
# Words that keep their final period, in any case: months, some days, US states, companies, titles, ... (PTBLexer's
# ABBREV1, ABBREV2; "sun.", "in." or "min." do not); "no." and a few others only before a number. Compared without
# the period; the capitalised ones only when written with a capital ("Wash." but not "wash.").
_ABBREVIATIONS = _words(
    "jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thurs fri "
    "ala ariz calif colo conn ct dak fla ga ind kan kans ky md mich minn mo mont neb nev okla penn tenn va vt wis "
    "wisc wyo inc co cos corp pty ltd plc bancorp dept bhd assn univ intl sys tel est ext sq jr sr bros blvd rd esq "
    "etc al seq mr mrs ms dr drs prof profs sen sens rep reps atty attys lt col gen messrs gov govs adm rev maj sgt "
    "cpl pvt mt ft capt st ste ave pres lieut hon brig cmdr comdr pfc spc supt supts det mme mlle vs alex wm jos cie "
    "cf ph.d ed.d bldg"
)
_CAPITALISED_ABBREVIATIONS = _words("Ark Del Ill La Mass Miss Ore Pa Tex Wash")
_BEFORE_NUMBER = _words("ca fig figs prop no nos art pp op")
_ACRONYM = re.compile(r"^[a-z](?:\.[a-z])+\.$", re.IGNORECASE)
# After a single letter and its period ("plan b."), one of these words starts a new sentence: the period is split off.
_SENTENCE_STARTS = _words(
    "A After An As At But He Her Here However If In It Many More Mr. Ms. Now Once One Other Our She Since So Some "
    "Such That The Their Then There These They This We What When While Yet You"
)
_SENTENCE_STARTS_UPPER = frozenset(w.upper() for w in _SENTENCE_STARTS)
_CLITIC = re.compile(r"^(.+?)(n't|'s|'m|'d|'ll|'re|'ve)$", re.IGNORECASE)
_APOSTROPHE_WORDS = _words("'n' 'cause 'em 'til 'till 'nuff 's 'm 'd 'll 're 've")
_MULTIWORD = {"cannot": "can not", "gonna": "gon na", "gotta": "got ta", "wanna": "wan na", "lemme": "lem me",
              "gimme": "gim me", "'tis": "'t is", "'twas": "'t was"}  # fmt: skip
_BRACKETS = {"(": "-LRB-", ")": "-RRB-", "[": "-LSB-", "]": "-RSB-", "{": "-LCB-", "}": "-RCB-"}
_URL = re.compile(r"^(?:https?|ftp)://\S+$|^www\.\S+$", re.IGNORECASE)
_SPLIT_INNER = [
    (re.compile(r'"'), " `` "),  # a double quote anywhere (dropped later)
    (re.compile(r"[()\[\]{}*=;]|--+"), lambda m: f" {m.group(0)[:2]} "),
    (re.compile(r"(?<!\d),|,(?!\d)"), " , "),  # a comma, except inside a number (1,000)
    (re.compile(r"(?<!\d):(?!//)|(?<=\d):(?!\d)"), " : "),  # a colon, except in a time (2:30) or a URL
    (re.compile(r"(?<=\w)[<>](?=\w)"), lambda m: f" {m.group(0)} "),  # x<y; <tag> stays
    (re.compile(r"(?<!\w)([$#])(?=\d)|(?<=\d)\$"), lambda m: f" {m.group(0)} "),  # $5, #1, 5$
    (re.compile(r"(\d[:.]\d+)([ap]m)\b", re.IGNORECASE), r"\1 \2"),  # 10:30am, 3.5pm (not 5pm)
    (re.compile(r"(?<!\S)(y')(?=[a-z])", re.IGNORECASE), r"\1 "),  # y'all, y'know
    (re.compile(r"(?<=[a-z])('n')(?=[a-z])", re.IGNORECASE), r" \1 "),  # rock'n'roll
]


def _punctuations() -> frozenset[str]:
    from pycocoevalcap.tokenizer.ptbtokenizer import PUNCTUATIONS

    return frozenset(PUNCTUATIONS)


def _keeps_period(word: str, following: str) -> bool:
    """Whether ``word`` (ending in ".") keeps its period as PTB does, ``following`` being the next chunk."""
    stem = word[:-1]
    if len(stem) == 1 and stem.isalpha():  # an initial: "b."
        return following not in _SENTENCE_STARTS and following not in _SENTENCE_STARTS_UPPER
    if stem.capitalize() in _CAPITALISED_ABBREVIATIONS:
        return not stem.islower()
    if _ACRONYM.match(word) or stem.lower() in _ABBREVIATIONS:
        return True
    return stem.lower() in _BEFORE_NUMBER and following[:1].isdigit()


def _split_chunk(chunk: str, following: str, touches: bool) -> list[str]:
    """One whitespace-free chunk (original case) -> its PTB tokens, punctuation included. ``following``: the next
    chunk (PTB looks ahead to decide whether "b." ends a sentence); ``touches``: no space between them."""
    trail: list[str] = []
    before_comma = touches and following[:1] in {",", ";", ":"}  # "bat.," keeps its period
    while chunk and chunk.lower() not in _APOSTROPHE_WORDS and chunk.lower() != "y'":
        dots = re.search(r"\.{2,}$", chunk)
        run = re.search(r"[?!]+$|''$", chunk)
        if dots:  # "dog..." is "dog ...", but "etc..." is "etc. .."
            trail.append("...")
            kept = chunk[: dots.start() + 1]
            if len(kept) > 1 and _keeps_period(kept, "..."):
                chunk = kept
                break
            chunk = chunk[: dots.start()]
        elif run:
            trail.append(run.group(0))
            chunk = chunk[: run.start()]
        elif chunk[-1] in "'`%-" or (chunk[-1] == "/" and not _URL.match(chunk)):
            trail.append(chunk[-1])
            chunk = chunk[:-1]
        elif chunk[-1] == "." and len(chunk) > 1:
            if before_comma or _keeps_period(chunk, trail[-1] if trail else following):
                break
            trail.append(".")
            chunk = chunk[:-1]
        else:
            break
        before_comma = False
    lead: list[str] = []
    while chunk:
        if chunk.startswith(("``", "''")):
            lead.append(chunk[:2])
            chunk = chunk[2:]
        elif chunk[0] == "'" and not _keeps_apostrophe(chunk):
            lead.append("`")
            chunk = chunk[1:]
        elif chunk[0] in "`/" or (chunk[0] == "-" and not chunk[1:2].isdigit()):
            lead.append(chunk[0])
            chunk = chunk[1:]
        else:
            break
    core: list[str] = []
    while chunk:
        clitic = _CLITIC.match(chunk)
        if not clitic or chunk.lower() in _APOSTROPHE_WORDS:
            core.insert(0, chunk)
            break
        core.insert(0, clitic.group(2))
        chunk = clitic.group(1)
    if core and core[0].lower() in _MULTIWORD:  # "cannot", "gonna", "'tis"
        core[:1] = _MULTIWORD[core[0].lower()].split()
    return [_BRACKETS.get(t, t) for t in [*lead, *core, *reversed(trail)]]


def _keeps_apostrophe(chunk: str) -> bool:
    """Whether a chunk starting with "'" is a word of its own ("'s", "'cause", "'90s", "'tis"), not a quote."""
    return chunk.lower() in _APOSTROPHE_WORDS or chunk.lower() in _MULTIWORD or bool(re.fullmatch(r"'\d0s", chunk))


def _pieces(text: str) -> list[tuple[str, bool]]:
    """``text`` -> its chunks after the splits inside words, each with whether the next chunk touches it."""
    words = _NORMALISE_RE.sub(lambda m: _NORMALISE[m.group(0)], _LINE_BREAKS.sub(" ", text)).split()
    joined: list[str] = []
    for word in words:  # PTB keeps "5 1/2" as one token, joined by a no-break space
        if joined and re.fullmatch(r"[$#]?\d+", joined[-1]) and re.match(r"\d+/\d+(?![\w/])", word):
            joined[-1] = f"{joined[-1]}\u00a0{word}"
        else:
            joined.append(word)
    pieces: list[tuple[str, bool]] = []
    for word in joined:
        for pattern, repl in _SPLIT_INNER:
            word = pattern.sub(repl, word)
        parts = [p for p in word.split(" ") if p]
        pieces.extend((part, i < len(parts) - 1) for i, part in enumerate(parts))
    return pieces


def _simple_tokens(text: str, next_text: str = "") -> list[str]:
    pieces = _pieces(text)
    after = _pieces(next_text)[:1] if next_text else [("", False)]
    following = [p for p, _ in [*pieces, *after][1 : len(pieces) + 1]]  # each chunk's next, across the line end
    tokens = [_split_chunk(chunk, nxt, touches) for (chunk, touches), nxt in zip(pieces, following, strict=True)]
    return [t.lower() for chunk_tokens in tokens for t in chunk_tokens]


def simple_tokenize(text: str, next_text: str = "") -> str:
    """``text`` tokenised as coco-caption's Java PTBTokenizer does it, in pure Python: lower-cased, punctuation and
    clitics split off (``don't`` -> ``do n't``, ``man's`` -> ``man 's``), then pycocoevalcap's punctuation tokens
    dropped. Returns the tokens joined by single spaces ("" when none is left).

    ``next_text``: the sentence after this one, when tokenising a list as one file the way pycocoevalcap does (the
    Java lexer reads past the line end to decide whether a final "b." ends a sentence).

    A close copy, not the full PTB lexer: equal to the Java tokenizer on coco-caption's example and on plain
    questions and captions; it may differ on e-mail addresses, emoticons, SGML tags and rare abbreviations."""
    drop = _punctuations()
    return " ".join(t for t in _simple_tokens(text, next_text) if t not in drop)


def _check_texts(name: str, texts: Sequence[str], where: str) -> None:
    bad = [t for t in texts if not isinstance(t, str)]
    if bad:
        raise MumoError(f"{name}[{where}] holds a {type(bad[0]).__name__} ({bad[0]!r}), not a string")


def _java_tokenize(sentences: list[str]) -> list[str]:
    """Stanford PTBTokenizer 3.4.1 (pycocoevalcap's jar and options), then pycocoevalcap's punctuation dropped."""
    from pycocoevalcap.tokenizer import ptbtokenizer

    jar = Path(ptbtokenizer.__file__).with_name(ptbtokenizer.STANFORD_CORENLP_3_4_1_JAR)
    drop = frozenset(ptbtokenizer.PUNCTUATIONS)
    # A file, as pycocoevalcap writes, but in a temporary folder rather than in its (perhaps read-only) package.
    with tempfile.TemporaryDirectory(prefix="mumo-ptb-") as tmp:
        path = Path(tmp) / "sentences.txt"
        path.write_text("".join(_LINE_BREAKS.sub(" ", s) + "\n" for s in sentences), encoding="utf-8")
        cmd = ["java", "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase"]
        done = subprocess.run([*cmd, str(path)], capture_output=True, check=False)
    if done.returncode != 0:
        raise MumoError(f"the PTB tokenizer (java) failed: {done.stderr.decode(errors='replace').strip()[-500:]}")
    lines = done.stdout.decode("utf-8").split("\n")
    if len(lines) < len(sentences) or any(lines[len(sentences) :]):
        raise RuntimeError(f"the PTB tokenizer returned {len(lines)} lines for {len(sentences)} sentences")
    return [" ".join(w for w in line.rstrip().split(" ") if w not in drop) for line in lines[: len(sentences)]]


def _tokenize_all(sentences: list[str], java: bool) -> list[str]:
    """One group of sentences tokenised as pycocoevalcap tokenises one dict: as one file, in one Java run (the lexer
    reads across line ends, so the grouping can matter: see ``simple_tokenize``)."""
    if not sentences:
        return []
    if java:
        return _java_tokenize(sentences)
    return [simple_tokenize(s, n) for s, n in zip(sentences, [*sentences[1:], ""], strict=True)]


def tokenize(texts: Mapping[K, Sequence[str]], *, java: bool | None = None) -> dict[K, list[str]]:
    """coco-caption's tokenisation of ``texts`` (key -> its sentences): returns the same keys, each sentence
    lower-cased, split by the PTB tokenizer and stripped of punctuation, tokens joined by single spaces.

    ``java``: None (default) uses the Java PTBTokenizer when ``java_available()``, else ``simple_tokenize``;
    True or False forces one (True without Java raises MumoError)."""
    if not isinstance(texts, Mapping):
        raise MumoError(f"texts must be a dict of key -> list of strings, not a {type(texts).__name__}")
    for key, sentences in texts.items():
        if isinstance(sentences, str) or not isinstance(sentences, Sequence):
            raise MumoError(f"texts[{key!r}] must be a list of strings, not a {type(sentences).__name__}")
        _check_texts("texts", sentences, repr(key))
    use_java = _resolve_java(java)
    flat = [s for sentences in texts.values() for s in sentences]
    tokens = iter(_tokenize_all(flat, use_java))
    return {key: [next(tokens) for _ in sentences] for key, sentences in texts.items()}


def _resolve_java(java: bool | None) -> bool:
    if java is None:
        return java_available()
    if java and not java_available():
        raise MumoError(JAVA_MISSING)
    return java


# ---------------------------------------------------------------------------------------------------------- scores


@dataclass
class CaptionScores:
    """Corpus-level caption scores of one split.

    ``scores``: metric name (``METRICS``) -> score in [0, 1] (CIDEr in [0, 10]), or None when not computed;
    ``missing``: metric -> why it was not computed (e.g. ``JAVA_MISSING``); ``n``: items scored;
    ``tokenizer``: "ptb-java" or "simple" (the pure-Python fallback)."""

    scores: dict[str, float | None]
    missing: dict[str, str] = field(default_factory=dict)
    n: int = 0
    tokenizer: str = "ptb-java"

    def to_dict(self) -> dict[str, Any]:
        return {"scores": dict(self.scores), "missing": dict(self.missing), "n": self.n, "tokenizer": self.tokenizer}


@dataclass
class SampleScores:
    """Scores of T generated sets for one split (one set per Monte Carlo sample t), as the VQG papers report them.

    ``scores``: metric -> {"max", "mean", "std", "per_sample"}, where ``per_sample[t]`` is the corpus-level score of
    sample t and max / mean / std (population, ddof = 0) are over the T of them; all None for a metric in
    ``missing`` (metric -> why). ``n``: items per set; ``tokenizer`` as in ``CaptionScores``."""

    scores: dict[str, dict[str, Any]]
    missing: dict[str, str] = field(default_factory=dict)
    n: int = 0
    tokenizer: str = "ptb-java"

    def to_dict(self) -> dict[str, Any]:
        scores = {m: {**s, "per_sample": list(s["per_sample"])} for m, s in self.scores.items()}
        return {"scores": scores, "missing": dict(self.missing), "n": self.n, "tokenizer": self.tokenizer}


def _few(keys: Iterable[Any], limit: int = 5) -> str:
    keys = sorted(keys, key=repr)
    shown = ", ".join(repr(k) for k in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def _check_references(references: Mapping[K, Sequence[str]]) -> None:
    if not isinstance(references, Mapping):
        raise MumoError(f"references must be a dict of key -> list of strings, not a {type(references).__name__}")
    if not references:
        raise MumoError("no references: score a whole split, with at least one item")
    for key, refs in references.items():
        if isinstance(refs, str) or not isinstance(refs, Sequence):
            raise MumoError(f"references[{key!r}] must be a list of strings, not a {type(refs).__name__}")
        if not refs:
            raise MumoError(f"references[{key!r}] is empty: every item needs at least one reference")
        _check_texts("references", refs, repr(key))


def _check_candidates(candidates: Mapping[K, str], references: Mapping[K, Sequence[str]], name: str) -> None:
    if not isinstance(candidates, Mapping):
        raise MumoError(f"{name} must be a dict of key -> string, not a {type(candidates).__name__}")
    if not candidates:
        raise MumoError(f"no {name}: score a whole split, with at least one item")
    without = set(candidates) - set(references)
    if without:
        raise MumoError(f"{len(without)} {name} key(s) have no references: {_few(without)}")
    unanswered = set(references) - set(candidates)
    if unanswered:
        raise MumoError(f"{len(unanswered)} references key(s) are missing from {name}: {_few(unanswered)}")
    for key, text in candidates.items():
        if not isinstance(text, str):
            raise MumoError(f"{name}[{key!r}] is a {type(text).__name__} ({text!r}), not a string")


@contextlib.contextmanager
def _meteor() -> Iterator[Any]:
    """pycocoevalcap's Meteor (one jar process, reused for every set scored inside), stopped on exit."""
    from pycocoevalcap.meteor.meteor import Meteor

    scorer = Meteor()
    try:
        yield scorer
    finally:
        jar = scorer.meteor_p
        with scorer.lock:
            with contextlib.suppress(OSError):  # a broken pipe when the jar died
                jar.stdin.close()
            jar.kill()
            jar.wait()
            jar.stdout.close()
            jar.stderr.close()


def _corpus_scores(gts: dict[Any, list[str]], res: dict[Any, list[str]], meteor: Any | None) -> dict[str, float]:
    """Tokenised references and candidates (key -> [text]) -> metric -> corpus score; METEOR only with a scorer."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    scores = {f"BLEU-{i + 1}": float(b) for i, b in enumerate(bleu)}
    if meteor is not None:
        # "|||" separates fields in the jar's protocol; pycocoevalcap strips it from candidates only.
        safe = {k: [r.replace("|||", "") for r in refs] for k, refs in gts.items()}
        try:
            scores["METEOR"] = float(meteor.compute_score(safe, res)[0])
        except (ValueError, OSError) as e:  # the jar died (memory: it asks for 2 GB) and answered nothing
            raise MumoError(f"METEOR 1.5 (java -Xmx2G -jar meteor-1.5.jar) failed: {e}") from e
    scores["ROUGE-L"] = float(Rouge().compute_score(gts, res)[0])
    scores["CIDEr"] = float(Cider().compute_score(gts, res)[0])
    return scores


def _prepare(
    sets: Sequence[Mapping[K, str]], references: Mapping[K, Sequence[str]], meteor: bool
) -> tuple[dict[K, list[str]], list[dict[K, list[str]]], bool, dict[str, str]]:
    """Tokenise the references once and each candidate set once, each as pycocoevalcap does (one Java run per group);
    returns them, whether Java is used and what is missing."""
    use_java = java_available()
    missing: dict[str, str] = {}
    if not meteor:
        missing["METEOR"] = METEOR_OFF
    elif not use_java:
        missing["METEOR"] = JAVA_MISSING
    keys = list(references)
    tokens = iter(_tokenize_all([r for k in keys for r in references[k]], use_java))
    gts = {k: [next(tokens) for _ in references[k]] for k in keys}
    res = [{k: [t] for k, t in zip(keys, _tokenize_all([s[k] for k in keys], use_java), strict=True)} for s in sets]
    return gts, res, use_java, missing


def caption_scores(
    candidates: Mapping[K, str], references: Mapping[K, Sequence[str]], *, meteor: bool = True
) -> CaptionScores:
    """BLEU-1..4, METEOR, ROUGE-L and CIDEr-D of ``candidates`` (key -> generated text) against ``references``
    (key -> its human texts) over a whole split, as pycocoevalcap 1.2 computes them.

    The two dicts must have exactly the same keys. ``meteor=False`` skips METEOR (its jar takes seconds to start and
    2 GB). Returns a ``CaptionScores``; without Java, METEOR is None and in ``missing`` with ``JAVA_MISSING``, and the
    texts are tokenised by ``simple_tokenize``. Raises MumoError for empty input, keys that do not match, an empty
    reference list or a text that is not a string."""
    _check_references(references)
    _check_candidates(candidates, references, "candidates")
    gts, (res,), use_java, missing = _prepare([candidates], references, meteor)
    with _meteor() if "METEOR" not in missing else contextlib.nullcontext() as scorer:
        scores = _corpus_scores(gts, res, scorer)
    return CaptionScores(
        scores={m: scores.get(m) for m in METRICS},
        missing=missing,
        n=len(gts),
        tokenizer="ptb-java" if use_java else "simple",
    )


def sample_scores(
    samples: Sequence[Mapping[K, str]], references: Mapping[K, Sequence[str]], *, meteor: bool = True
) -> SampleScores:
    """Scores of T generated sets (``samples[t]``: key -> text of Monte Carlo sample t, each a whole split) against
    ``references``: per metric the corpus score of each sample and their max, mean and std over the T samples (how
    the seed paper reports "max" and "avg ± std").

    References and each set are tokenised once (one Java call for all), and one METEOR process scores every set.
    Returns a ``SampleScores``; errors as ``caption_scores``, plus MumoError for no samples."""
    if isinstance(samples, Mapping) or not isinstance(samples, Sequence):
        raise MumoError(f"samples must be a list of dicts (one per sample), not a {type(samples).__name__}")
    if not samples:
        raise MumoError("no samples: pass one dict of generated texts per Monte Carlo sample")
    _check_references(references)
    for t, candidates in enumerate(samples):
        _check_candidates(candidates, references, f"samples[{t}]")
    gts, res, use_java, missing = _prepare(samples, references, meteor)
    with _meteor() if "METEOR" not in missing else contextlib.nullcontext() as scorer:
        per_sample = [_corpus_scores(gts, r, scorer) for r in res]
    summary: dict[str, dict[str, Any]] = {}
    for metric in METRICS:
        if metric in missing:
            summary[metric] = {"max": None, "mean": None, "std": None, "per_sample": [None] * len(samples)}
            continue
        values = [s[metric] for s in per_sample]
        mean = math.fsum(values) / len(values)
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))
        summary[metric] = {"max": max(values), "mean": mean, "std": std, "per_sample": values}
    return SampleScores(scores=summary, missing=missing, n=len(gts), tokenizer="ptb-java" if use_java else "simple")


# ---------------------------------------------------------------------------------------------------------- diversity


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct-n: the number of distinct n-grams over ``texts`` divided by the number of n-grams (Li et al. 2016).

    Tokens are ``simple_tokenize``'s (lower-cased, punctuation dropped), so "What is it?" and "what is it" count as
    the same words. Returns a value in [0, 1]; 0.0 when the texts hold no n-gram."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise MumoError(f"n must be an integer >= 1, not {n!r}")
    if isinstance(texts, str):
        raise MumoError("texts must be a list of strings, not one string")
    _check_texts("texts", texts, "...")
    grams = []
    for text in texts:
        tokens = simple_tokenize(text).split()
        grams.extend(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return len(set(grams)) / len(grams) if grams else 0.0


def distinct_per_image(samples_per_image: Sequence[Sequence[str]]) -> float:
    """The mean, over images, of the number of distinct strings among each image's T generated samples (1.0 when
    every sample of every image is the same text, T when all differ). Strings are compared exactly as given."""
    if not samples_per_image:
        raise MumoError("no images: pass one list of generated samples per image")
    counts = []
    for i, samples in enumerate(samples_per_image):
        if isinstance(samples, str) or not samples:
            raise MumoError(f"samples_per_image[{i}] must be a non-empty list of strings")
        _check_texts("samples_per_image", samples, str(i))
        counts.append(len(set(samples)))
    return math.fsum(counts) / len(counts)
