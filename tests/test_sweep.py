import csv
import hashlib
import json
import math

import numpy as np
import pytest
import torch

from cloak import cli
from cloak.emodb import find_emodb
from cloak.metrics import accuracy
from cloak.model import EmotionCNN, default_model_path, load_checkpoint, save_checkpoint, sha256_file
from cloak.train import extract_features, predict_proba
from cloak.eval.sweep import SweepConfig, held_out_clips, load_wave16, parse_steps, run_sweep



def shipped_model():
    try:
        path = default_model_path()
    except ImportError:  # cloak.models not installed as a package yet
        return None
    return path if path.is_file() else None


pytestmark = pytest.mark.skipif(find_emodb() is None, reason="EmoDB not available (set $CLOAK_EMODB)")
LIMIT = 4


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    """The shipped model when present, else a seeded untrained CNN: the properties hold for any model."""
    if shipped_model():
        return shipped_model()
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "random.pt"
    save_checkpoint(EmotionCNN().eval(), path)
    return path


@pytest.fixture(scope="module")
def clips():
    return held_out_clips(limit=LIMIT)


@pytest.fixture(scope="module")
def clean_predictions(model_path, clips):
    """Clean predictions computed independently of the sweep: training's feature path."""
    cnn, _ = load_checkpoint(model_path)
    return predict_proba(cnn, extract_features(clips))


def same(rows_a, rows_b):
    """Equal rows, NaN included."""
    return json.dumps(rows_a) == json.dumps(rows_b)


class FakeTranscriber:
    """Knows the words of the clean clips only: WER 0 on clean audio, 1 on anything else."""

    name, identity, language = "fake", "fake-1", "de"

    def __init__(self, clips):
        self.texts = {self._key(load_wave16(u)): u.text for u in clips}
        self.calls = 0

    @staticmethod
    def _key(wave):
        return hashlib.sha256(np.ascontiguousarray(wave, dtype="<f4").tobytes()).hexdigest()

    def transcribe(self, wave, rate):
        assert rate == 16_000
        self.calls += 1
        return self.texts.get(self._key(wave), "")


def test_config_validation():
    assert SweepConfig(steps=(5, 0, 2, 2)).steps == (0, 2, 5)
    assert parse_steps("0, 1,20") == (0, 1, 20)
    for bad in [dict(steps=()), dict(steps=(-1,)), dict(domain="mfcc"), dict(labels="soft"), dict(asr="vosk"),
                dict(objective="nope"), dict(spec_epsilon=0), dict(limit=0), dict(domain="spec", asr="whisper")]:
        with pytest.raises(ValueError):
            SweepConfig(**bad)
    with pytest.raises(ValueError, match="comma-separated"):
        parse_steps("0,two")
    assert SweepConfig(labels="true").objective_name == "true-ce"
    assert SweepConfig(labels="pseudo", objective="ce").objective_name == "ce"


def test_wave_sweep_scores_writes_and_resumes(tmp_path, model_path, clips, clean_predictions):
    fake = FakeTranscriber(clips)
    result = run_sweep(SweepConfig(steps=(0, 2), limit=LIMIT), tmp_path, model=model_path, transcriber=fake)
    row0, row2 = result.rows
    y_true = [u.label for u in clips]
    assert (row0["steps"], row2["steps"], row0["n"]) == (0, 2, LIMIT)
    assert row0["accuracy"] == accuracy(y_true, clean_predictions.argmax(1))
    assert row0["changed"] == 0.0
    assert row0["loss"] <= row0["loss_true"]  # CE to the top-1 label is the smallest CE of all
    assert math.isnan(row0["snr_db"]) and 20 < row2["snr_db"] < 60
    assert row0["wer"] == 0.0 and row2["wer"] == 1.0  # clean audio transcribed, cloaked audio is new audio
    assert (result.computed, result.transcribed, fake.calls) == (LIMIT, 2 * LIMIT, 2 * LIMIT)

    with open(tmp_path / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["steps"] for r in table] == ["0", "2"] and table[0]["snr_db"] == ""
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["model"]["sha256"] == sha256_file(model_path)
    assert saved["config"]["steps"] == [0, 2] and saved["objective_name"] == "topk"
    assert {"torch", "numpy", "jiwer"} <= set(saved["versions"])
    assert saved["per_sex"]["m"]["accuracy_before"] == row0["accuracy"]  # the first clips are speaker 03 (m)
    assert saved["rows"][0]["snr_db"] is None  # strict JSON: no NaN

    again = FakeTranscriber(clips)
    resumed = run_sweep(SweepConfig(steps=(0, 2), limit=LIMIT), tmp_path, model=model_path, transcriber=again)
    assert (resumed.computed, again.calls) == (0, 0)
    assert same(resumed.rows, result.rows)

    more = run_sweep(SweepConfig(steps=(0, 2, 3), limit=LIMIT), tmp_path, model=model_path, transcriber=again)
    assert (more.computed, again.calls) == (LIMIT, LIMIT)  # only the new step count
    assert same(more.rows[:2], result.rows)


def test_asr_added_to_a_cached_sweep_recomputes_audio_only_where_needed(tmp_path, model_path, clips):
    run_sweep(SweepConfig(steps=(0, 1), limit=2), tmp_path, model=model_path)
    fake = FakeTranscriber(clips)
    result = run_sweep(SweepConfig(steps=(0, 1), limit=2), tmp_path, model=model_path, transcriber=fake)
    assert (result.computed, fake.calls) == (2, 4)
    assert result.rows[0]["wer"] == 0.0


def test_true_labels_and_spectrogram_domain(tmp_path, model_path, clean_predictions):
    y_acc = None
    for domain in ("wave", "spec"):
        result = run_sweep(SweepConfig(steps=(0, 1), limit=LIMIT, domain=domain, labels="true"),
                           tmp_path / domain, model=model_path)
        row0, row1 = result.rows
        assert row0["loss"] == row0["loss_true"] and row1["loss"] == row1["loss_true"]
        assert math.isnan(row0["wer"]) and math.isnan(row1["wer"])
        assert math.isnan(row1["snr_db"]) == (domain == "spec")
        y_acc = row0["accuracy"] if y_acc is None else y_acc
        assert row0["accuracy"] == y_acc  # the clean predictions do not depend on the domain


@pytest.mark.skipif(shipped_model() is None, reason="needs the shipped model")
def test_attack_raises_the_loss_of_the_shipped_model(tmp_path):
    result = run_sweep(SweepConfig(steps=(0, 2), limit=LIMIT, objective="ce"), tmp_path)
    assert result.rows[1]["loss"] > result.rows[0]["loss"]
    assert result.rows[1]["changed"] > 0


def test_cli_sweep_and_privacy(tmp_path, model_path, monkeypatch, capsys):
    monkeypatch.setenv("CLOAK_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "sweep"
    assert cli.main(["sweep", "--model", str(model_path), "--limit", "2", "--steps", "0,1", "--out", str(out), "-q"]) == 0
    assert (out / "results.csv").is_file() and "steps" in capsys.readouterr().out
    assert cli.main(["sweep", "--steps", "x", "--out", str(out), "-q"]) == 2

    out = tmp_path / "privacy"
    assert cli.main(["sweep", "--privacy", "--privacy-epochs", "1", "--model", str(model_path), "--limit", "2",
                     "--strength", "low", "--out", str(out), "-q"]) == 0
    report = json.loads((out / "privacy.json").read_text())
    assert (report["n_train"], report["n_held_out"]) == (2, 2)
    res = report["results"]
    assert set(res) == {f"{m}_{a}" for m in ("surrogate", "adaptive", "control") for a in ("clean", "cloaked")}
    for r in res.values():
        assert r["privacy"] == pytest.approx(1 - r["uar"])
    assert "adaptive (trained on cloaked), cloaked audio" in capsys.readouterr().out
    assert list((tmp_path / "cache" / "privacy").glob("features-*.pt"))  # cloaked features cached for reruns
