import math

import numpy as np
import pytest

from cloak.eval.text import normalize, snr_db, utterance_wers, wer, word_errors


@pytest.mark.parametrize("raw, expected", [
    ("Heute abend könnte ich es ihm sagen.", "heute abend könnte ich es ihm sagen"),
    ("„Was sind denn das für Tüten?“", "was sind denn das für tüten"),
    ("»Straße« – Öl … Äpfel; ÜBER: ja! 'nein' \"doch\", gut", "straße öl äpfel über ja nein doch gut"),
    ("STRASSE ẞ", "strasse ß"),  # lower() keeps ß; casefold() would give "ss"
    ("u\u0308ber", "über"),  # decomposed umlaut composes
    ("geht's  zum Eis-Schrank\n", "gehts zum eisschrank"),
    ("In 7 Stunden, um 3,5 oder 1.000 - 2", "in 7 stunden um 3,5 oder 1.000 2"),
])
def test_normalize(raw, expected):
    assert normalize(raw) == expected


def test_wer_one_substitution_in_four_words():
    assert wer(["der Lappen liegt hier"], ["der Lumpen liegt hier"]) == pytest.approx(0.25)


def test_wer_ignores_case_and_punctuation():
    assert wer(["Der Lappen liegt auf dem Eisschrank."], ["der lappen liegt auf dem eisschrank!"]) == 0.0


def test_wer_is_corpus_level_not_mean_of_utterances():
    refs, hyps = ["a b", "c d e f"], ["a b", "c"]
    assert utterance_wers(refs, hyps) == pytest.approx([0.0, 0.75])
    assert wer(refs, hyps) == pytest.approx(3 / 6)


def test_wer_counts_insertions_and_empty_hypotheses():
    assert wer(["eins zwei"], ["eins zwei drei vier"]) == pytest.approx(1.0)
    assert wer(["eins zwei"], [""]) == pytest.approx(1.0)


def test_word_errors_per_pair_add_up_to_the_corpus_wer():
    refs = ["Der Lappen liegt auf dem Eisschrank.", "Das will sie am Mittwoch abgeben.", "Heute abend"]
    hyps = ["der lappen liegt auf dem eis schrank", "", "heute abend könnte ich"]
    errors, words = word_errors(refs, hyps)
    assert errors.tolist() == [2, 6, 2]  # eisschrank -> eis + schrank; all six deleted; two inserted
    assert words.tolist() == [6, 6, 2]
    assert errors.sum() / words.sum() == pytest.approx(wer(refs, hyps))


def test_wer_rejects_bad_input():
    with pytest.raises(ValueError, match="2 references but 1"):
        wer(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no words"):
        wer(["?!"], ["a"])


def test_snr_known_values():
    clean = np.ones(100, dtype=np.float32)
    assert snr_db(clean, clean * 1.1) == pytest.approx(20.0)
    assert snr_db(clean, clean + 0.01) == pytest.approx(40.0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(1000)
    assert snr_db(x, x + x) == pytest.approx(0.0)


def test_snr_edge_cases():
    x = np.linspace(-1, 1, 50)
    assert snr_db(x, x.copy()) == math.inf
    assert snr_db(np.zeros(5), np.ones(5)) == -math.inf
    with pytest.raises(ValueError, match="shape"):
        snr_db(np.zeros(5), np.zeros(6))
