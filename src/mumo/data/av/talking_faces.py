"""Synthetic talking faces, offline: real (espeak-ng) speech and procedurally rendered mouths.

:func:`generate_talking_faces` writes a data set in the layout of pre-extracted LRS2 (as Wav2Lip reads it),
so lip-sync code can train and be tested without downloading anything::

    out_dir/
      meta.json                       # format, version, seed, counts, speakers per split
      filelists/{train,val,test}.txt  # one "speaker/clip" per line; speakers never shared between splits,
                                      # except in a single-speaker set (split by clip)
      <speaker>/<clip>/
        00000.png 00001.png ...       # 160x160 RGB frames at 25 fps
        audio.wav                     # 16 kHz mono 16-bit PCM, exactly n_frames / 25 s long
        boxes.json                    # face box per frame (no face detector needed)
        meta.json                     # text, voice, rate, pitch, phoneme and word timings, n_frames, identity

A speaker is one :class:`~mumo.data.av.visemes.FaceIdentity` together with one voice (accent + variant, base
rate and pitch); its clips say different sentences built from :data:`TEMPLATES`, 1.5-4 s each. Every clip
is a pure function of (seed, clip index), so the same seed gives byte-identical PNG and WAV files (with the
same espeak-ng, Pillow/zlib, NumPy and SciPy versions) and a different seed gives a different set.

Two kinds of set (``meta.json``'s ``split_by``, absent in sets that are split by speaker):

- **multi-speaker** (3 speakers or more, the default): split 70/15/15 by speaker, at least one per split, so
  val and test hold only unseen people, as the lip-sync expert and speaker-independent models need;
- **single-speaker** (``speakers=1``; ``"split_by": "clip"``): one person's clips split 70/15/15 by clip, at
  least one per split, for models that learn one speaker's style (lip-to-speech, Lip2Wav-style). The person
  is then in every split's speaker list. A clip's split depends only on (seed, clip index, clip count).
"""

from __future__ import annotations

import json
import math
import re
import wave
from dataclasses import asdict
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from mumo.data._output import check_seed, staged_output
from mumo.data.av.espeak import SAMPLE_RATE, Speech, synthesize
from mumo.data.av.visemes import FPS, FRAME_SIZE, FaceIdentity, mouth_track, render_face
from mumo.errors import MumoError

FORMAT = "mumo-talking-faces"
FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.7, 0.15, 0.15)  # of the speakers (of the clips in a single-speaker set)
MIN_SECONDS, MAX_SECONDS = 1.5, 4.0
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640
META_FILE = "meta.json"
_ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc")
_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m7", "f1", "f2", "f3", "f4", "f5")
_PNG = {"format": "PNG", "compress_level": 1}  # fixed writer settings: part of byte-for-byte determinism
_SPEAKER = re.compile(r"spk\d{3,}")
_ATTEMPTS = 20

WORDS: dict[str, tuple[str, ...]] = {
    "name": ("Peter", "Mary", "Bob", "Fiona", "Sam", "Olivia", "Victor", "Maya", "Tom", "Judith", "Wendy", "George"),
    "adj": ("big", "small", "happy", "purple", "quiet", "famous", "cheap", "warm", "broken", "shiny", "old", "lovely"),
    "noun": ("map", "boat", "window", "mouse", "bottle", "piano", "jacket", "garden", "whistle", "teacup", "fish"),
    "nouns": ("apples", "books", "shoes", "pebbles", "maps", "violins", "chairs", "feathers", "buttons", "oranges"),
    "verb": ("paint", "find", "move", "visit", "fix", "wash", "borrow", "open", "measure", "push", "follow", "buy"),
    "verbed": ("painted", "found", "moved", "visited", "fixed", "washed", "borrowed", "opened", "bought", "pushed"),
    "place": ("in the kitchen", "by the river", "at the market", "on the beach", "near the bridge", "at home"),
    "time": ("tomorrow morning", "on Monday", "before lunch", "after the show", "next summer", "tonight"),
    "number": ("two", "three", "four", "five", "seven", "nine", "twelve", "twenty"),
    "adverb": ("slowly", "quickly", "carefully", "gently", "happily", "loudly", "very well"),
}
TEMPLATES = (
    "The {adj} {noun} is {place}.",
    "{name} {verbed} the {adj} {noun} {place}.",
    "Please {verb} the {noun} {adverb}.",
    "We will {verb} {number} {nouns} {time}.",
    "Why did {name} {verb} my {adj} {noun}?",
    "{name} thinks the {noun} looks {adj}.",
    "I {verbed} {number} {adj} {nouns} {time}.",
    "Could you {verb} the {noun} {place}, {name}?",
    "My {adj} {noun} was {verbed} {adverb}.",
    "{name} and {name} {verbed} the {nouns} {time}.",
    "If {name} can {verb} the {adj} {noun} {time}, we will {verb} the {nouns}.",
    "The {nouns} {place} were {adj}, so {name} {verbed} them {adverb}.",
)


def sentence(rng: np.random.Generator) -> str:
    """A random sentence from :data:`TEMPLATES` and :data:`WORDS` (4-16 words)."""
    template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
    return re.sub(r"\{(\w+)\}", lambda m: WORDS[m.group(1)][int(rng.integers(len(WORDS[m.group(1)])))], template)


def generate_talking_faces(
    out_dir: str | Path,
    *,
    clips: int,
    speakers: int | None = None,
    seed: int = 0,
    size: int = FRAME_SIZE,
    progress: bool = True,
) -> dict:
    """Write a synthetic talking-face data set (layout in the module docstring).

    Args:
        out_dir: absent, empty, or a previous talking-faces set, replaced only once the new set is complete: the
            set is built in a folder beside ``out_dir`` and renamed into place, so an error or Ctrl-C leaves
            ``out_dir`` as it was (:func:`mumo.data._output.staged_output`).
        clips: number of clips, assigned to speakers in turn.
        speakers: number of people; default ``max(3, clips // 5)``. Three or more: split 70/15/15 by speaker,
            at least one speaker per split. Exactly 1: a single-speaker set, split 70/15/15 by clip (at least
            one clip per split, so ``clips >= 3``). 2 is refused (one split would have no speaker of its own).
        seed: the same seed gives byte-identical files.
        size: frame side in pixels.
        progress: show a tqdm progress bar.

    Returns:
        The contents of ``out_dir/meta.json``.

    Raises:
        MumoError: ``out_dir`` holds something else, a count or the seed (outside [0, 2**32)) is invalid, or
            espeak-ng is missing.
    """
    n_speakers = max(3, clips // 5) if speakers is None else speakers
    if clips < 1:
        raise MumoError(f"clips must be >= 1, not {clips}")
    if n_speakers == 1 and clips < 3:
        raise MumoError(
            f"a single-speaker set (speakers 1) is split by clip and needs clips >= 3 (one per split), not {clips}"
        )
    if n_speakers < 1 or n_speakers == 2:
        raise MumoError(
            f"speakers must be 1 (a single-speaker set split by clip, e.g. for lip-to-speech) or >= 3 (a set split "
            f"by speaker, one per split at least: train, val, test), not {n_speakers}"
        )
    if n_speakers > clips:
        raise MumoError(f"speakers ({n_speakers}) cannot exceed clips ({clips}): every speaker needs a clip")
    if size < 32:
        raise MumoError(f"frame size must be >= 32 pixels, not {size}")
    check_seed(seed)
    previous = _check_output_dir(Path(out_dir))
    with staged_output(out_dir, replace=previous) as out:
        meta = _generate(out, clips=clips, n_speakers=n_speakers, seed=seed, size=size, progress=progress)
    return meta


def _generate(out: Path, *, clips: int, n_speakers: int, seed: int, size: int, progress: bool) -> dict:
    """The set into the empty folder ``out``; returns its meta.json."""
    _write_json(out / META_FILE, {"format": FORMAT, "format_version": FORMAT_VERSION, "complete": False})

    width = max(3, len(str(n_speakers - 1)))
    speaker_ids = [f"spk{i:0{width}d}" for i in range(n_speakers)]
    people = [_speaker(np.random.default_rng([seed, 0, i])) for i in range(n_speakers)]
    by_clip = n_speakers == 1  # one person: the clips are split, each by (seed, index, count) alone
    split_of = (
        _split(clips, np.random.default_rng([seed, 3]))
        if by_clip
        else _split(n_speakers, np.random.default_rng([seed, 2]))
    )

    lines: dict[str, list[str]] = {split: [] for split in SPLITS}
    per_speaker = [0] * n_speakers
    engine = ""
    with tqdm(total=clips, unit="clip", desc="talking faces", disable=not progress) as bar:
        for k in range(clips):
            s = k % n_speakers
            name = f"{speaker_ids[s]}/{per_speaker[s]:05d}"
            per_speaker[s] += 1
            engine = _write_clip(out / name, people[s], np.random.default_rng([seed, 1, k]), size=size)
            lines[split_of[k] if by_clip else split_of[s]].append(name)
            bar.update(1)

    speakers_in = {split: sorted({name.split("/")[0] for name in lines[split]}) for split in SPLITS}
    (out / "filelists").mkdir(exist_ok=True)
    for split in SPLITS:
        text = "".join(f"{line}\n" for line in sorted(lines[split]))
        (out / "filelists" / f"{split}.txt").write_text(text, encoding="utf-8", newline="\n")
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "complete": True,
        "seed": seed,
        **({"split_by": "clip"} if by_clip else {}),  # absent: by speaker (multi-speaker sets stay as they were)
        "counts": {
            "clips": clips,
            "speakers": n_speakers,
            **{f"{split}_clips": len(lines[split]) for split in SPLITS},
            **{f"{split}_speakers": len(speakers_in[split]) for split in SPLITS},
        },
        "speakers": speakers_in,
        "fps": FPS,
        "sample_rate": SAMPLE_RATE,
        "frame_size": size,
        "engine": engine,
    }
    _write_json(out / META_FILE, meta)
    return meta


def _split(n: int, rng: np.random.Generator) -> dict[int, str]:
    """Items ``0..n-1`` (n >= 3) to train/val/test, 70/15/15 in a random order from ``rng``, one per split at
    least."""
    order = rng.permutation(n)
    n_val = max(1, round(SPLIT_FRACTIONS[1] * n))
    n_test = max(1, round(SPLIT_FRACTIONS[2] * n))
    bounds = (0, n - n_val - n_test, n - n_test, n)
    return {int(i): split for k, split in enumerate(SPLITS) for i in order[bounds[k] : bounds[k + 1]]}


def _speaker(rng: np.random.Generator) -> dict:
    """One person: a face and a voice."""
    return {
        "identity": FaceIdentity.sample(rng),
        "voice": f"{_ACCENTS[int(rng.integers(len(_ACCENTS)))]}+{_VARIANTS[int(rng.integers(len(_VARIANTS)))]}",
        "rate": int(rng.integers(140, 191)),
        "pitch": int(rng.integers(30, 71)),
    }


def _speak(person: dict, rng: np.random.Generator) -> Speech:
    """A sentence of 1.5-4 s in the person's voice (a new sentence until one fits)."""
    for _ in range(_ATTEMPTS):
        speech = synthesize(
            sentence(rng),
            voice=person["voice"],
            rate=person["rate"] + int(rng.integers(-15, 16)),
            pitch=int(np.clip(person["pitch"] + rng.integers(-5, 6), 0, 100)),
        )
        if MIN_SECONDS <= speech.duration_s <= MAX_SECONDS:
            return speech
    raise MumoError(f"no sentence of {MIN_SECONDS}-{MAX_SECONDS} s in {_ATTEMPTS} attempts with {person['voice']}")


def _write_clip(clip_dir: Path, person: dict, rng: np.random.Generator, *, size: int) -> str:
    """Frames, audio, boxes and metadata of one clip; returns the espeak-ng version."""
    speech = _speak(person, rng)
    n_frames = math.ceil(len(speech.samples) / SAMPLES_PER_FRAME)
    pcm = np.zeros(n_frames * SAMPLES_PER_FRAME, dtype=np.int16)  # padded to whole frames
    pcm[: len(speech.samples)] = np.round(np.clip(speech.samples, -1.0, 1.0) * 32767).astype(np.int16)

    clip_dir.mkdir(parents=True, exist_ok=True)
    with wave.open(str(clip_dir / "audio.wav"), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(SAMPLE_RATE)
        f.writeframes(pcm.astype("<i2").tobytes())
    identity: FaceIdentity = person["identity"]
    track = mouth_track(speech.phonemes, n_frames, fps=FPS)  # (F, 5)
    boxes = []
    for i in range(n_frames):
        frame, box = render_face(track[i], identity, i, rng, size=size, fps=FPS)
        Image.fromarray(frame).save(clip_dir / f"{i:05d}.png", **_PNG)
        boxes.append(list(box))
    _write_json(clip_dir / "boxes.json", {"box": "x0, y0, x1, y1 in pixels; x1, y1 exclusive", "boxes": boxes})
    _write_json(
        clip_dir / META_FILE,
        {
            "text": speech.text,
            "voice": person["voice"],
            "voice_id": speech.voice,
            "rate": speech.rate,
            "pitch": speech.pitch,
            "engine": speech.engine,
            "phonemes": [list(p) for p in speech.phonemes],
            "words": [list(w) for w in speech.words],
            "n_frames": n_frames,
            "fps": FPS,
            "sample_rate": SAMPLE_RATE,
            "n_samples": len(pcm),
            "speech_samples": len(speech.samples),
            "frame_size": size,
            "identity": asdict(identity),
        },
    )
    return speech.engine


def _check_output_dir(out: Path) -> bool:
    """Accept an absent or empty directory (False) or a previous talking-faces set, to be replaced once the new
    one is complete (True); refuse anything else. Nothing is written or removed here."""
    if out.exists() and not out.is_dir():
        raise MumoError(f"{out} exists and is not a directory; choose another output directory")
    if not out.exists() or not any(out.iterdir()):
        return False
    try:
        previous = json.loads((out / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = None
    if not isinstance(previous, dict) or previous.get("format") != FORMAT:
        raise MumoError(
            f"{out} is not empty and is not a talking-faces data set (no {META_FILE} with format {FORMAT!r}); "
            "choose an empty or new output directory"
        )
    ours = {META_FILE, "filelists"}
    foreign = sorted(
        p.name for p in out.iterdir() if p.name not in ours and not (p.is_dir() and _SPEAKER.fullmatch(p.name))
    )
    if foreign:
        raise MumoError(
            f"{out} holds a talking-faces data set plus other files ({', '.join(foreign[:5])}); "
            "refusing to replace it, choose another output directory"
        )
    return True


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n", encoding="utf-8", newline="\n")
