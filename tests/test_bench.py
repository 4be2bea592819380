"""The transfer bench: its arithmetic, its controls, and a small real run."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from cloak.eval import bench


def test_hiding_ratio_is_zero_for_nothing_hidden_and_one_at_chance():
    assert bench.hiding_ratio(0.8, 0.8, 1 / 7) == 0.0
    assert bench.hiding_ratio(0.8, 1 / 7, 1 / 7) == pytest.approx(1.0)
    assert bench.hiding_ratio(0.8, 0.9, 1 / 7) < 0
    assert math.isnan(bench.hiding_ratio(0.1, 0.05, 1 / 7))


def test_bootstrap_interval_separates_a_real_gap_from_none():
    rng = np.random.default_rng(1)
    control = rng.random(200) < 0.8
    cloaked = rng.random(200) < 0.3
    lo, hi = bench.bootstrap_interval(control, cloaked, seed=0)
    assert 0.35 < lo < 0.5 < hi < 0.65
    lo, hi = bench.bootstrap_interval(control, control, seed=0)
    assert lo == hi == 0.0


def test_wer_increase_interval_covers_the_rise_and_is_zero_without_one():
    rng = np.random.default_rng(2)
    words = rng.integers(5, 15, 300)
    before = rng.binomial(words, 0.1)
    after = before + rng.binomial(words, 0.05)
    lo, hi = bench.ratio_increase_interval(before, after, words, seed=0)
    rise = (after.sum() - before.sum()) / words.sum()
    assert 0 < lo < rise < hi < 0.1
    assert bench.ratio_increase_interval(before, before, words, seed=0) == (0.0, 0.0)


def test_noise_control_has_the_requested_snr():
    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(16_000).astype(np.float32) * 0.1 for _ in range(3)]
    noisy = bench.add_noise(waves, [30.0, 20.0, 10.0], seed=0)
    for w, n, snr in zip(waves, noisy, (30.0, 20.0, 10.0)):
        measured = 10 * np.log10(np.sum(w.astype(np.float64) ** 2) / np.sum((n - w).astype(np.float64) ** 2))
        assert measured == pytest.approx(snr, abs=0.3)


def test_hiding_interval_covers_the_ratio_and_narrows_with_more_clips():
    rng = np.random.default_rng(0)
    widths = []
    for n in (60, 960):
        clean = rng.random(n) < 0.7
        cloaked = clean & (rng.random(n) < 0.5)
        lo, hi = bench.hiding_interval(clean, cloaked, 1 / 7, seed=1)
        assert lo < bench.hiding_ratio(clean.mean(), cloaked.mean(), 1 / 7) < hi
        widths.append(hi - lo)
    assert widths[1] < 0.5 * widths[0]  # the interval shrinks as 1/sqrt(clips)
    same = rng.random(200) < 0.6
    lo, hi = bench.hiding_interval(same, same, 1 / 7, seed=1)
    assert lo == hi == 0.0


class _TableJudge:
    """A judge that reads its class probabilities from the first samples of each wave."""

    name, family, corpus, classes = "table", "test", "emodb", ("a", "b", "c")

    def predict_proba(self, waves):
        return np.stack([w[:3] / w[:3].sum() for w in waves])


def test_score_judge_reads_the_true_class_probability_beside_accuracy():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 40)
    clean = rng.random((40, 3)) + 2.0 * np.eye(3)[labels]  # mostly right
    cloaked = rng.random((40, 3))  # about chance
    waves = {c: [np.concatenate([p, np.zeros(5)]) for p in probs]
             for c, probs in (("clean", clean), ("cloaked", cloaked), ("noise", clean), ("zero", clean))}
    res = bench.score_judge(_TableJudge(), waves, labels, seed=0)
    true_clean = (clean / clean.sum(1, keepdims=True))[np.arange(40), labels]
    true_cloaked = (cloaked / cloaked.sum(1, keepdims=True))[np.arange(40), labels]
    assert res.confidence["clean"] == pytest.approx(true_clean.mean())
    assert res.confidence["cloaked"] == pytest.approx(true_cloaked.mean())
    assert res.accuracy["clean"] > 0.9 and res.beats_controls
    lo, hi = res.confidence_margin_ci["noise"]
    assert 0 < lo < true_clean.mean() - true_cloaked.mean() < hi
    same = bench.score_judge(_TableJudge(), {c: waves["clean"] for c in waves}, labels, seed=0)
    assert same.confidence_margin_ci["zero"] == (0.0, 0.0) and not same.beats_controls


def test_overrides_are_checked():
    assert bench.parse_overrides(["effort=0", "rate=0.5"]) == (("effort", 0.0), ("rate", 0.5))
    with pytest.raises(ValueError, match="CUE=X"):
        bench.parse_overrides(["volume=1"])
    with pytest.raises(ValueError, match="not a number"):
        bench.parse_overrides(["effort=high"])
    with pytest.raises(ValueError, match="no neutralizer"):
        bench.BenchConfig(mode="subtle", overrides=(("effort", 0.0),)).resolved_mode()


def test_zero_control_is_the_pipeline_at_strength_zero():
    zero = bench.BenchConfig(mode="neutral", attack="medium").zero_mode()
    assert zero.neutralize.strength == 0.0 and zero.attack is None
    assert bench.BenchConfig(mode="subtle").zero_mode().attack.steps == 0


def test_small_bench_run_writes_results(tmp_path, monkeypatch, emodb_root):
    monkeypatch.setenv("CLOAK_CACHE", str(tmp_path / "cache"))
    config = bench.BenchConfig(mode="neutral", corpora=("emodb",), judges=("egemaps-svm",), quality=False,
                               asr=False, limit=4)
    result = bench.run_bench(config)
    (corpus,) = result.corpora
    (judge,) = corpus.judges
    assert corpus.n_clips == 4 and corpus.noise_snr_db == bench.NOISE_SNR_DB
    assert set(judge.accuracy) == set(bench.CONDITIONS)
    for cond, acc in judge.accuracy.items():
        assert judge.hiding[cond] == pytest.approx(bench.hiding_ratio(judge.accuracy["clean"], acc, 1 / 7))
    assert result.realtime_factor > 0
    bench.write_result(result, tmp_path / "out")
    payload = json.loads((tmp_path / "out" / "results.json").read_text())
    assert payload["corpora"][0]["judges"][0]["judge"] == "egemaps-svm"
    assert "| egemaps-svm |" in (tmp_path / "out" / "results.md").read_text()
    # A second run reads the cloaked audio back from the cache instead of recomputing it.
    cached = list((tmp_path / "cache" / "bench").rglob("*.npy"))
    assert len(cached) == 8
    again = bench.run_bench(config)
    assert again.corpora[0].judges[0].accuracy == judge.accuracy
    assert again.realtime_factor is None  # nothing was cloaked, so nothing was timed
    bench.write_result(again, tmp_path / "again")
    assert "not timed" in (tmp_path / "again" / "results.md").read_text()


def test_whisper_judges_are_crafting_members_only_when_the_words_guard_crafts():
    whisper = {"whisper-probe", "ravdess-whisper-probe"}
    assert bench.helped_craft(bench.BenchConfig().resolved_mode()) == whisper  # the default, thorough
    assert bench.helped_craft(bench.BenchConfig(mode="neutral", band_gain=3).resolved_mode()) == whisper
    for cfg in (bench.BenchConfig(mode="neutral"), bench.BenchConfig(mode="neutral", band_gain=3, words_guard=False),
                bench.BenchConfig(mode="neutral", band_gain=3, band_control=True), bench.BenchConfig(words_guard=False)):
        assert bench.helped_craft(cfg.resolved_mode()) == set()
    assert bench.BenchConfig(mode="neutral", band_gain=3).resolved_mode(language="en").bands.language == "en"


def test_comparison_scores_variants_clip_by_clip(emodb_root):
    from cloak.eval.compare import Comparison
    from cloak.eval.judges import load_judge

    clips = bench.held_out("emodb", limit=4)
    compare = Comparison(clips, [load_judge("egemaps-svm")], dnsmos_every=2)
    clean = compare.score(clips.waves)
    noisy = compare.score(bench.add_noise(clips.waves, [0.0] * 4, seed=0))
    assert clean.similarity == pytest.approx(1.0, abs=1e-5) and noisy.similarity.max() < 0.98
    assert clean.errors.sum() <= noisy.errors.sum() and clean.words.sum() > 10
    assert "egemaps-svm" in compare.row("clean", clean) and "(0.00)" in compare.row("clean", clean)
    same = compare.changes(clean, clean)
    assert len(same) == 3 and all(line.endswith("+0.000 [+0.000, +0.000]") for line in same)
    similarity = next(line for line in compare.changes(noisy, clean) if "similarity" in line)
    assert similarity.split()[2].startswith("-")
