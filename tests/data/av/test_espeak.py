import ctypes.util

import numpy as np
import pytest

from mumo.data.av import espeak
from mumo.data.av.espeak import SAMPLE_RATE, synthesize
from mumo.errors import MumoError

needs_espeak = pytest.mark.skipif(
    ctypes.util.find_library("espeak-ng") is None,
    reason="espeak-ng is not installed (apt-get install espeak-ng)",
)
SENTENCE = "Papa made a big map of the farm."


@pytest.fixture(scope="module")
def speech():
    return synthesize(SENTENCE)


@needs_espeak
def test_audio_is_16k_float_and_phonemes_are_ordered_inside_it(speech):
    assert speech.sample_rate == SAMPLE_RATE == 16_000
    assert speech.samples.dtype == np.float32 and speech.samples.ndim == 1
    assert np.abs(speech.samples).max() <= 1.0 and np.abs(speech.samples).max() > 0.1  # not silent
    assert 1.0 < speech.duration_s < 4.0
    starts = [p.start_ms for p in speech.phonemes]
    assert starts == sorted(starts) and starts[0] >= 0
    assert starts[-1] <= 1000 * speech.duration_s
    spoken = [p.ipa for p in speech.phonemes if p.ipa]
    assert spoken[:2] == ["p", "ɐ"] and "m" in spoken and len(spoken) >= 15
    # the words are the sentence's, in order and in time order (espeak-ng speaks "of the" as one word)
    assert [w.text for w in speech.words] == ["Papa", "made", "a", "big", "map", "of", "farm"]
    assert [w.start_ms for w in speech.words] == sorted(w.start_ms for w in speech.words)
    assert speech.engine.startswith("espeak-ng ") and speech.voice == "gmw/en"


@needs_espeak
def test_same_arguments_give_identical_output(speech):
    again = synthesize(SENTENCE)
    assert np.array_equal(speech.samples, again.samples)
    assert speech.phonemes == again.phonemes and speech.words == again.words


@needs_espeak
def test_rate_voice_and_pitch_change_the_speech(speech):
    fast = synthesize(SENTENCE, rate=250)
    slow = synthesize(SENTENCE, rate=120)
    assert fast.duration_s < speech.duration_s < slow.duration_s
    assert slow.duration_s > 1.5 * fast.duration_s
    assert slow.phonemes[-1].start_ms > fast.phonemes[-1].start_ms

    female, male = synthesize(SENTENCE, voice="en+f3"), synthesize(SENTENCE, voice="en+m3")
    assert female.voice == "gmw/en+f3" and male.voice == "gmw/en+m3"
    assert not np.array_equal(female.samples[:8000], male.samples[:8000])

    # an accent changes the phonemes; a language code with a variant resolves to a voice file
    us = synthesize(SENTENCE, voice="en-us+f2")
    assert us.voice == "gmw/en-US+f2"
    assert [p.ipa for p in us.phonemes] != [p.ipa for p in speech.phonemes]
    assert synthesize("Hello.", voice="en-gb+m3").voice == "gmw/en+m3"

    high, low = synthesize(SENTENCE, pitch=90), synthesize(SENTENCE, pitch=10)
    assert not np.array_equal(high.samples, low.samples)


@needs_espeak
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"voice": "xx-nowhere"}, "unknown espeak-ng voice 'xx-nowhere'"),
        ({"voice": "en+nobody"}, "unknown espeak-ng voice variant 'nobody'"),
        ({"voice": "en+../../etc"}, "invalid espeak-ng voice"),
        ({"rate": 20}, "rate must be 80-450"),
        ({"pitch": 101}, "pitch must be 0-100"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    with pytest.raises(MumoError, match=message):
        synthesize("Hello.", **kwargs)


def test_empty_or_huge_text_is_refused():
    with pytest.raises(MumoError, match="non-empty"):
        synthesize("   ")
    with pytest.raises(MumoError, match="limit is 2000"):
        synthesize("a" * 2001)


def test_missing_library_says_how_to_install(monkeypatch):
    monkeypatch.setattr(espeak, "_WORKER", espeak._WORKER.replace("libespeak-ng.so.1", "libespeak-ng-absent.so.9"))
    with pytest.raises(MumoError, match="apt-get install espeak-ng"):
        synthesize("Hello.")
