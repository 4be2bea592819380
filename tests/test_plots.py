import json

import pytest

from cloak import cli
from cloak.eval.plots import find_results, load_results, make_figures, output_stem
from cloak.eval.sweep import SweepConfig, SweepResult, write_results

NAN = float("nan")


def fake_run(out, domain, labels, wer=True):
    """A results folder as run_sweep writes it, with made-up numbers."""
    config = SweepConfig(steps=(0, 1, 5), domain=domain, labels=labels, asr="whisper" if wer and domain == "wave" else "none")
    rows = []
    for k, acc in zip(config.steps, (0.8, 0.4, 0.1)):
        rows.append({"steps": k, "n": 107, "accuracy": acc, "uar": acc - 0.05, "loss": 0.5 + k, "loss_true": 0.6 + k,
                     "changed": 0.0 if k == 0 else 0.7, "accuracy_f": acc, "accuracy_m": acc,
                     "wer": (0.1 + 0.01 * k) if config.asr != "none" else NAN,
                     "snr_db": NAN if k == 0 or domain == "spec" else 35.0})
    summary = {"config": {**config.__dict__, "steps": list(config.steps)}, "objective_name": config.objective_name,
               "asr": "whisper:whisper-base beam=5:de" if config.asr != "none" else None,
               "model": {"path": "m.pt", "sha256": "ab" * 32}, "speakers": ["03", "08"]}
    write_results(SweepResult(config, rows, summary), out)
    return out


def check_images(paths):
    for p in paths:
        data = p.read_bytes()
        assert len(data) > 1000
        assert data.startswith(b"\x89PNG") if p.suffix == ".png" else b"<svg" in data[:2000]


def test_all_three_figures(tmp_path):
    for domain, labels in [("spec", "true"), ("spec", "pseudo"), ("wave", "pseudo"), ("wave", "true")]:
        fake_run(tmp_path / "results" / f"{domain}_{labels}", domain, labels, wer=labels == "pseudo")
    runs = load_results(find_results([tmp_path / "results"]))
    assert len(runs) == 4
    written, skipped = make_figures(runs, tmp_path / "figs")
    names = sorted(p.name for p in written)
    assert names == sorted(f"{n}.{ext}" for n in ("spec_true", "spec_pseudo", "wave") for ext in ("png", "svg"))
    assert skipped == []
    check_images(written)
    # Drawing the same results again leaves the same bytes (no date stamp, fixed SVG ids), and no temp file.
    before = {p.name: p.read_bytes() for p in written}
    again, _ = make_figures(runs, tmp_path / "figs")
    assert {p.name: p.read_bytes() for p in again} == before
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == names


def test_missing_data_is_skipped_and_stem_naming(tmp_path, capsys):
    results = fake_run(tmp_path / "only_wave", "wave", "pseudo") / "results.json"
    assert cli.main(["plot", str(results), "-o", str(tmp_path / "out" / "sweep.png")]) == 0
    printed = capsys.readouterr().out
    assert "skipped spec_true" in printed and "skipped spec_pseudo" in printed
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["sweep_wave.png", "sweep_wave.svg"]
    check_images((tmp_path / "out").iterdir())


def test_plot_input_errors(tmp_path):
    assert output_stem(tmp_path / "figs", "wave") == tmp_path / "figs" / "wave"
    assert cli.main(["plot", str(tmp_path / "missing"), "-o", str(tmp_path / "f")]) == 2
    assert cli.main(["plot", str(tmp_path), "-o", str(tmp_path / "f")]) == 2  # a folder without results
    (tmp_path / "bad.json").write_text(json.dumps({"rows": []}))
    with pytest.raises(ValueError, match="not a sweep results.json"):
        load_results([tmp_path / "bad.json"])


def test_privacy_figure_from_the_committed_adaptive_attacker_run(tmp_path, capsys):
    import shutil
    from pathlib import Path

    committed = Path(__file__).resolve().parents[1] / "eval" / "results" / "privacy" / "privacy.json"
    shutil.copy(committed, tmp_path / "privacy.json")
    assert cli.main(["plot", str(tmp_path), "-o", str(tmp_path / "figs")]) == 0
    written = sorted((tmp_path / "figs").iterdir())
    assert [p.name for p in written] == ["privacy.png", "privacy.svg"]
    check_images(written)
    assert str(tmp_path / "figs" / "privacy.png") in capsys.readouterr().out
