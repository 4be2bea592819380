"""Speaker verification figures: the equal error rate by hand, and enrolment on real EmoDB voices."""
from __future__ import annotations

import numpy as np
import pytest

from cloak.eval.identity import enrol, equal_error_rate, identify
from cloak.eval.quality import SpeakerSimilarity

SPEAKERS = ("03", "08", "09", "10")


def test_equal_error_rate_by_hand():
    # threshold 0.5: one target of three rejected (0.3), one impostor of three accepted (0.5)
    assert equal_error_rate(np.array([0.9, 0.8, 0.3]), np.array([0.5, 0.2, 0.1])) == pytest.approx(1 / 3)
    assert equal_error_rate(np.array([0.9, 0.8]), np.array([0.2, 0.1])) == 0.0
    assert equal_error_rate(np.array([0.2, 0.1]), np.array([0.9, 0.8])) == 1.0
    with pytest.raises(ValueError, match="at least one target"):
        equal_error_rate(np.array([]), np.array([0.1]))


def test_identify_scores_own_against_other_enrolments():
    enrolments = enrol([np.array([2.0, 0.0]), np.array([0.0, 1.0]), np.array([0.0, 3.0])], ["a", "b", "b"])
    np.testing.assert_allclose(enrolments["a"], [1.0, 0.0])
    np.testing.assert_allclose(enrolments["b"], [0.0, 1.0])
    r = identify([np.array([1.0, 0.2]), np.array([0.1, 1.0])], ["a", "b"], enrolments)
    assert r.top1 == 1.0 and r.eer == 0.0 and r.own > r.others and (r.trials, r.speakers) == (2, 2)
    swapped = identify([np.array([1.0, 0.2]), np.array([0.1, 1.0])], ["b", "a"], enrolments)
    assert r.identified.tolist() == [True, True]
    assert swapped.top1 == 0.0 and swapped.eer == 1.0 and not swapped.identified.any()


def test_bad_input_is_a_clear_error():
    enrolments = enrol([np.array([1.0, 0.0]), np.array([0.0, 1.0])], ["a", "b"])
    with pytest.raises(ValueError, match="not enrolled: c"):
        identify([np.array([1.0, 0.0])], ["c"], enrolments)
    with pytest.raises(ValueError, match="at least two enrolled"):
        identify([np.array([1.0, 0.0])], ["a"], {"a": enrolments["a"]})
    with pytest.raises(ValueError, match="zero length"):
        enrol([np.zeros(2)], ["a"])
    with pytest.raises(ValueError, match="one speaker per"):
        identify([np.array([1.0, 0.0])], ["a", "b"], enrolments)


def test_emotional_speech_verifies_against_the_speakers_calm_voice(emodb):
    """Four EmoDB speakers enrolled from two neutral clips each; their angry, sad and happy clips are the trials."""
    speaker = SpeakerSimilarity()
    neutral = [u for s in SPEAKERS for u in [u for u in emodb if u.speaker == s and u.emotion == "neutral"][:2]]
    trials = [u for s in SPEAKERS for u in [u for u in emodb if u.speaker == s and u.emotion in ("anger", "sadness", "happiness")][:4]]
    enrolments = enrol([speaker.embed(_read(u.path)) for u in neutral], [u.speaker for u in neutral])
    embs = [speaker.embed(_read(u.path)) for u in trials]
    r = identify(embs, [u.speaker for u in trials], enrolments)
    assert r.top1 >= 0.75 and r.eer <= 0.25 and r.own > r.others + 0.1, r
    wrong = identify(embs, [SPEAKERS[(SPEAKERS.index(u.speaker) + 1) % 4] for u in trials], enrolments)
    assert wrong.top1 <= 0.25 and wrong.eer > 0.5, wrong


def _read(path) -> np.ndarray:
    import soundfile as sf

    wave, rate = sf.read(str(path), dtype="float32")
    assert rate == 16_000
    return wave
