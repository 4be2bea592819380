"""The adaptive attacker: probe judges retrained on cloaked training clips, read on held-out clips."""
import json

import numpy as np
import pytest

from cloak.eval import adaptive, bench
from cloak.eval.judges import load_judge
from cloak.eval.judges.probe import L2_GRID


def test_training_clips_keep_every_training_speaker_and_no_held_out_one(emodb_root):
    clips = adaptive.training_clips("emodb", limit=24)
    speakers = set(clips.speakers)
    assert len(clips.names) == 24 and len(set(clips.names)) == 24
    assert speakers == {"09", "10", "11", "12", "13", "14", "15", "16"}
    assert len(adaptive.training_clips("emodb").names) == 535 - 107


def test_small_adaptive_run(tmp_path, monkeypatch, emodb_root):
    monkeypatch.setenv("CLOAK_CACHE", str(tmp_path / "cache"))
    config = bench.BenchConfig(mode="neutral", corpora=("emodb",), judges=("egemaps-svm",), limit=6)
    payload = adaptive.run_adaptive(config, train_limit=40)
    (corpus,) = payload["corpora"]
    (row,) = corpus["judges"]
    assert (corpus["n_train"], corpus["n_held_out"]) == (40, 6)
    assert row["l2"] in L2_GRID and set(row["accuracy"]) == set(adaptive.CONDITIONS)
    # The shipped judge's figures are what the judge itself says about the same clips.
    held = bench.held_out("emodb", 6)
    shipped = load_judge("egemaps-svm").predict_proba(held.waves).argmax(axis=1)
    assert row["accuracy"]["shipped_clean"] == pytest.approx(np.mean(shipped == held.labels))
    for k in ("shipped_cloaked", "adaptive_cloaked"):
        assert row["hiding"][k] == pytest.approx(bench.hiding_ratio(row["accuracy"]["shipped_clean"], row["accuracy"][k], 1 / 7))
    adaptive.write_adaptive(payload, tmp_path / "out")
    assert json.loads((tmp_path / "out" / "adaptive.json").read_text())["corpora"][0]["n_train"] == 40
    assert "| egemaps-svm |" in (tmp_path / "out" / "adaptive.md").read_text()
