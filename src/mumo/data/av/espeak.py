"""Offline speech with phoneme timings from espeak-ng (Debian ``espeak-ng``), through its C library.

:func:`synthesize` turns a sentence into 16 kHz mono speech plus the IPA phonemes and words espeak-ng
spoke, each with its start time in the audio. Those timings drive the mouths of
:mod:`mumo.data.av.talking_faces`.

How it works: a short Python script (:data:`_WORKER`, standard library only) loads ``libespeak-ng.so.1``
with ctypes, calls ``espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, NULL, phoneme events | IPA)``,
registers a synthesis callback that collects both the 22,050 Hz samples and the events (type 7 =
phoneme, type 1 = word), then ``espeak_Synth`` + ``espeak_Synchronize``, and writes everything to its
stdout. No temporary files are written.

Why a child process per call rather than the library in this process: libespeak-ng keeps process-global
state (voice, parameters, synthesiser phase, libc ``rand()``), so in one process the same sentence comes
out different on every call (measured with 1.51: 40,080, 40,941, 40,947... samples for one sentence,
also after ``srand``), and ``espeak_Terminate`` + ``espeak_Initialize`` to reset it hangs. A fresh process
starts from the same state every time, which makes the output a pure function of (text, voice, rate,
pitch) and leaves nothing behind in the caller: no library handle, no callback, no lock, safe from several
threads at once. It costs ~30-100 ms of process start per call.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.signal import resample_poly

from mumo.errors import MumoError

ESPEAK_RATE = 22_050  # espeak-ng's native sample rate (Hz)
SAMPLE_RATE = 16_000  # rate of Speech.samples (Hz): 22,050 * 320 / 441
VOICES = ("en", "en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc")  # accents, all tested
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m7", "f1", "f2", "f3", "f4", "f5")  # "en+f3": voice "+" variant
MIN_RATE, MAX_RATE = 80, 450  # words per minute, espeak-ng's limits
MAX_TEXT_CHARS = 2_000
_TIMEOUT_S = 60

# Exit codes of the worker script, mapped to messages in _run_worker.
_NO_LIBRARY, _BAD_INIT, _BAD_VOICE, _BAD_VARIANT, _BAD_SYNTH = 3, 4, 5, 6, 7

# The child process: standard library only so that it starts fast (`python -I -S`). It reads one JSON
# request on stdin and writes one JSON header line, then the raw little-endian int16 samples, on stdout.
_WORKER = r"""
import ctypes, json, os, sys

class Id(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]

class Event(ctypes.Structure):  # espeak_EVENT
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", Id)]

class Voice(ctypes.Structure):  # espeak_VOICE
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_char_p), ("identifier", ctypes.c_char_p),
                ("gender", ctypes.c_ubyte), ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte),
                ("xx1", ctypes.c_ubyte), ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]

def fail(code, message):
    sys.stderr.write(message)
    sys.exit(code)

req = json.loads(sys.stdin.read())
try:
    lib = ctypes.CDLL("libespeak-ng.so.1")
except OSError as exc:
    fail(3, str(exc))
lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
lib.espeak_Info.restype = ctypes.c_char_p
lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
lib.espeak_GetCurrentVoice.restype = ctypes.POINTER(Voice)
lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                             ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
# AUDIO_OUTPUT_SYNCHRONOUS = 2; options: PHONEME_EVENTS 0x1 | PHONEME_IPA 0x2 | DONT_EXIT 0x8000
rate = lib.espeak_Initialize(2, 0, None, 0x8003)
if rate <= 0:
    fail(4, "espeak_Initialize failed (is espeak-ng-data installed?)")
data_path = ctypes.c_char_p()
version = lib.espeak_Info(ctypes.byref(data_path)).decode()

# "en-gb+f3": a voice name or language, then an optional variant from espeak-ng-data/voices/!v.
base, _, variant = req["voice"].partition("+")
if lib.espeak_SetVoiceByName(base.encode()) != 0:
    props = Voice()
    props.languages = base.encode()
    if lib.espeak_SetVoiceByProperties(ctypes.byref(props)) != 0:
        fail(5, base)
identifier = lib.espeak_GetCurrentVoice().contents.identifier
if variant:
    if not os.path.isfile(os.path.join(data_path.value.decode(), "voices", "!v", variant)):
        fail(6, variant)
    identifier += b"+" + variant.encode()
    if lib.espeak_SetVoiceByName(identifier) != 0:
        fail(6, variant)
lib.espeak_SetParameter(1, req["rate"], 0)  # espeakRATE, absolute
lib.espeak_SetParameter(3, req["pitch"], 0)  # espeakPITCH, absolute

chunks, phonemes, words = [], [], []

@ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(Event))
def callback(wav, n, events):
    if wav and n > 0:
        chunks.append(ctypes.string_at(wav, 2 * n))
    i = 0
    while events[i].type != 0:  # espeakEVENT_LIST_TERMINATED
        e = events[i]
        if e.type == 7:  # espeakEVENT_PHONEME; "" marks a pause
            phonemes.append([e.id.string.decode("utf-8", "replace"), e.audio_position])
        elif e.type == 1:  # espeakEVENT_WORD; text_position is 1-based
            words.append([e.text_position, e.length, e.audio_position])
        i += 1
    return 0

lib.espeak_SetSynthCallback(callback)
text = req["text"].encode() + b"\0"
# position 0, POS_CHARACTER, no end, espeakCHARS_UTF8
if lib.espeak_Synth(text, len(text), 0, 1, 0, 1, None, None) != 0 or lib.espeak_Synchronize() != 0:
    fail(7, "espeak_Synth failed")
header = {"version": version, "sample_rate": rate, "voice": identifier.decode(), "phonemes": phonemes,
          "words": words}
sys.stdout.buffer.write(json.dumps(header).encode() + b"\n" + b"".join(chunks))
"""


class Phoneme(NamedTuple):
    """One phoneme espeak-ng spoke: IPA (``""`` for a pause) and start time in the audio."""

    ipa: str
    start_ms: int


class Word(NamedTuple):
    """One word espeak-ng spoke: its text and start time in the audio.

    espeak-ng speaks some pairs of function words as one (``"of the"``); the event then names the first.
    """

    text: str
    start_ms: int


@dataclass(frozen=True)
class Speech:
    """Synthesised speech and what was said when.

    Attributes:
        samples: (N,) float32 in [-1, 1] at ``sample_rate`` (16 kHz).
        phonemes: in time order; start times are in ms from the first sample.
        words: in time order.
        voice: the espeak-ng voice identifier used (e.g. ``gmw/en+f3``).
        engine: the espeak-ng version (output can differ between versions).
    """

    text: str
    samples: np.ndarray
    sample_rate: int
    phonemes: list[Phoneme]
    words: list[Word]
    voice: str
    rate: int
    pitch: int
    engine: str

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def synthesize(text: str, *, voice: str = "en", rate: int = 175, pitch: int = 50) -> Speech:
    """Speak ``text`` with espeak-ng; the same arguments always give the same samples and timings.

    Args:
        text: UTF-8 text, at most 2,000 characters.
        voice: a voice name or language (``en``, ``en-us``, ``en-gb-scotland``...), optionally with a
            variant: ``en+f3``, ``en-us+m3`` (``espeak-ng --voices=en`` and ``--voices=variant`` list them).
        rate: speaking rate in words per minute, 80-450.
        pitch: base pitch, 0-100.

    Returns:
        The speech resampled from 22,050 Hz to 16 kHz with ``scipy.signal.resample_poly(x, 320, 441)``
        (160/441 would give 8 kHz), with phoneme and word start times.

    Raises:
        MumoError: espeak-ng is not installed, the voice or variant is unknown, or an argument is out of range.
    """
    if not isinstance(text, str) or not text.strip():
        raise MumoError("text to synthesise must be a non-empty string")
    if len(text) > MAX_TEXT_CHARS:
        raise MumoError(f"text to synthesise has {len(text)} characters; the limit is {MAX_TEXT_CHARS}")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise MumoError(f"espeak-ng rate must be {MIN_RATE}-{MAX_RATE} words per minute, not {rate}")
    if not 0 <= pitch <= 100:
        raise MumoError(f"espeak-ng pitch must be 0-100, not {pitch}")
    if not voice or any(c.isspace() or c in "/\\" for c in voice.partition("+")[2]):
        raise MumoError(f"invalid espeak-ng voice {voice!r}")
    header, pcm = _run_worker({"text": text, "voice": voice, "rate": int(rate), "pitch": int(pitch)})
    if header["sample_rate"] != ESPEAK_RATE:
        raise MumoError(f"espeak-ng produced {header['sample_rate']} Hz audio, expected {ESPEAK_RATE} Hz")
    native = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0  # (N22,)
    if native.size == 0:
        raise MumoError(f"espeak-ng produced no audio for voice {voice!r} (an MBROLA voice without mbrola?)")
    samples = resample_poly(native, 320, 441).astype(np.float32)  # (ceil(N22 * 320 / 441),)
    words = [Word(text[pos - 1 : pos - 1 + length], ms) for pos, length, ms in header["words"]]
    return Speech(
        text=text,
        samples=np.clip(samples, -1.0, 1.0),
        sample_rate=SAMPLE_RATE,
        phonemes=[Phoneme(ipa, ms) for ipa, ms in header["phonemes"]],
        words=words,
        voice=header["voice"],
        rate=int(rate),
        pitch=int(pitch),
        engine=f"espeak-ng {header['version']}",
    )


def _run_worker(request: dict) -> tuple[dict, bytes]:
    """Run :data:`_WORKER` in a fresh interpreter; its parsed header and raw int16 samples."""
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _WORKER],
            input=json.dumps(request).encode(),
            capture_output=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise MumoError(f"espeak-ng took more than {_TIMEOUT_S} s to synthesise {request['text'][:40]!r}") from None
    detail = done.stderr.decode("utf-8", "replace").strip()
    if done.returncode == _NO_LIBRARY:
        raise MumoError(
            f"espeak-ng is not installed ({detail}); install it with `apt-get install espeak-ng` "
            "(Debian/Ubuntu) or your system's espeak-ng package"
        )
    if done.returncode == _BAD_VOICE:
        raise MumoError(
            f"unknown espeak-ng voice {request['voice']!r}; try one of {', '.join(VOICES)} "
            "(`espeak-ng --voices=en` lists them)"
        )
    if done.returncode == _BAD_VARIANT:
        raise MumoError(
            f"unknown espeak-ng voice variant {detail!r} in {request['voice']!r}; try one of {', '.join(VARIANTS)} "
            "(`espeak-ng --voices=variant` lists them)"
        )
    if done.returncode != 0:
        raise MumoError(f"espeak-ng failed (exit status {done.returncode}): {detail[-500:]}")
    head, _, pcm = done.stdout.partition(b"\n")
    return json.loads(head), pcm
