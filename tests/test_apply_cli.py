"""`cloak apply` / `cloak predict` as a user runs them, including every kind of bad input."""
import csv
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from cloak import batch
from cloak.cli import main
from cloak.emodb import EMOTIONS
from cloak.eval.text import wer


@pytest.fixture
def folder(tmp_path, held_out):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for u, dest in zip(held_out[:2], (src, src / "sub")):
        shutil.copy(u.path, dest / u.path.name)
    return src


def snapshot(path):
    return {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}


def test_apply_folder_mirrors_tree_and_writes_report(folder, tmp_path, capsys):
    before = snapshot(folder)
    out = tmp_path / "out"
    assert main(["apply", str(folder), "-o", str(out), "--mode", "subtle", "--strength", "low", "-q"]) == 0
    outs = sorted(p.relative_to(out) for p in out.rglob("*.wav"))
    assert outs == sorted(p.relative_to(folder) for p in before)
    assert snapshot(folder) == before  # inputs untouched
    (tmp_path / "new").touch()  # outputs get the permissions any new file gets, not mkstemp's 0600
    mode = (tmp_path / "new").stat().st_mode & 0o777
    assert {p.stat().st_mode & 0o777 for p in out.rglob("*") if p.is_file()} == {mode}
    rows = list(csv.DictReader(open(out / "cloak-report.csv")))
    assert len(rows) == 2 and all(r["status"] == "done" for r in rows)
    assert all(float(r["snr_db"]) > 30 for r in rows)
    assert all(r["emotion_before"] in EMOTIONS and r["emotion_after"] in EMOTIONS for r in rows)
    # what an independent judge (never used to craft) hears, beside the surrogate
    assert all(r["judge"] == "egemaps-svm" and r["judge_before"] in EMOTIONS and r["judge_after"] in EMOTIONS
               for r in rows)
    # a second run refuses to overwrite, --resume skips, --overwrite replaces
    assert main(["apply", str(folder), "-o", str(out), "-q"]) == 1
    assert "exists" in capsys.readouterr().err
    assert main(["apply", str(folder), "-o", str(out), "--resume", "-q"]) == 0
    assert "0 cloaked, 2 skipped" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.requires_asr
def test_apply_quality_reports_the_voice_and_the_words(held_out, tmp_path):
    u = held_out[0]
    out = tmp_path / "out"
    assert main(["apply", str(u.path), "-o", str(out), "--mode", "subtle", "--strength", "low", "--quality", "-q"]) == 0
    (row,) = csv.DictReader(open(out / "cloak-report.csv"))
    assert 0.9 < float(row["speaker_similarity"]) <= 1.0  # 40 dB of noise keeps the voice ...
    assert abs(float(row["dnsmos_after"]) - float(row["dnsmos_before"])) < 0.5
    # ... and the words: what Whisper base hears in each, and the word error rate of one against the other
    assert wer([u.text], [row["words_before"]]) <= 0.34
    assert float(row["words_changed"]) == pytest.approx(wer([row["words_before"]], [row["words_after"]]), abs=5e-5)  # 4 places


def test_apply_beside_input(folder):
    f = next(folder.glob("*.wav"))
    assert main(["apply", str(f), "-q", "--steps", "2"]) == 0
    assert (folder / f"{f.stem}.cloaked.wav").is_file()
    # a folder run does not pick up earlier outputs
    assert all(".cloaked" not in j.src.name for j in batch.plan([folder]))


@pytest.mark.parametrize("mode", ["neutral", "subtle"])
def test_apply_one_file_to_a_named_file_in_its_container(folder, tmp_path, mode):
    f = next(folder.glob("*.wav"))
    before = snapshot(folder)
    out = tmp_path / "calm.flac"
    assert main(["apply", str(f), "-o", str(out), "--mode", mode, "--steps", "2", "--judge", "none", "-q"]) == 0
    assert out.is_file() and sf.info(str(out)).format == "FLAC"  # a file, not a folder named calm.flac
    assert sf.info(str(out)).samplerate == sf.info(str(f)).samplerate
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calm.flac", "in"]  # no report, no temp file left
    assert snapshot(folder) == before
    # two inputs, or a folder, still mirror under -o
    assert [j.dest for j in batch.plan([folder], tmp_path / "x.wav")] != [tmp_path / "x.wav"]


BAD = {
    "not_audio.wav": lambda p: p.write_text("hello, I am text"),
    "empty.wav": lambda p: p.write_bytes(b""),
    "truncated.wav": None,  # built from a real file below
    "zero.wav": lambda p: sf.write(p, np.zeros((0, 1), dtype=np.float32), 16000),
    "nan.wav": lambda p: sf.write(p, np.full(16000, np.nan, dtype=np.float32), 16000, subtype="FLOAT"),
    "inf.wav": lambda p: sf.write(p, np.r_[np.zeros(8000), np.inf, np.zeros(8000)].astype(np.float32), 16000, subtype="FLOAT"),
    "short.wav": lambda p: sf.write(p, 0.1 * np.ones(800, dtype=np.float32), 16000),
    "silent.wav": lambda p: sf.write(p, np.zeros(32000, dtype=np.float32), 16000),
}
MESSAGES = {"not_audio.wav": "not a readable audio file", "empty.wav": "empty file",
            "truncated.wav": "not a readable audio file", "zero.wav": "no samples", "nan.wav": "NaN or infinite",
            "inf.wav": "NaN or infinite", "short.wav": "too short", "silent.wav": "silent"}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_one_line_nothing_written(name, tmp_path, clip, cloak_cmd):
    src = tmp_path / name
    if name == "truncated.wav":
        src.write_bytes(clip[1].path.read_bytes()[:30])  # cut inside the RIFF header
    else:
        BAD[name](src)
    before = src.read_bytes()
    out = tmp_path / "out"
    proc = subprocess.run([*cloak_cmd, "apply", str(src), "-o", str(out), "-q"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    failed = [ln for ln in proc.stderr.splitlines() if ln.startswith("  failed:")]
    assert len(failed) == 1 and MESSAGES[name] in failed[0], proc.stderr
    written = [p.name for p in out.rglob("*")] if out.exists() else []
    assert written in ([], ["cloak-report.csv"])  # the run report, no audio, no temp files
    assert src.read_bytes() == before


def test_batch_continues_past_bad_files(folder, tmp_path):
    (folder / "broken.wav").write_text("not audio")
    out = tmp_path / "out"
    assert main(["apply", str(folder), "-o", str(out), "--steps", "1", "-q"]) == 1
    rows = {r["file"].split("/")[-1]: r for r in csv.DictReader(open(out / "cloak-report.csv"))}
    assert rows["broken.wav"]["status"] == "failed" and "not a readable audio file" in rows["broken.wav"]["error"]
    assert sum(r["status"] == "done" for r in rows.values()) == 2


def test_predict_json_lines(held_out, capsys):
    files = [str(u.path) for u in held_out[:3]]
    assert main(["predict", "--json", *files]) == 0
    lines = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert [d["file"] for d in lines] == files
    for d in lines:
        assert list(d["probabilities"]) == list(EMOTIONS)
        assert d["emotion"] == max(d["probabilities"], key=d["probabilities"].get)
        assert sum(d["probabilities"].values()) == pytest.approx(1, abs=1e-4)


def test_predict_any_rate_and_channels(clip, tmp_path, capsys):
    import soxr

    wave, _ = clip
    st = np.stack([wave, wave], 1)
    sf.write(tmp_path / "a.flac", soxr.resample(st, 16000, 44100), 44100)
    assert main(["predict", "--json", str(clip[1].path), str(tmp_path / "a.flac")]) == 0
    a, b = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert a["emotion"] == b["emotion"]
    assert max(abs(a["probabilities"][e] - b["probabilities"][e]) for e in EMOTIONS) < 0.1


@pytest.mark.parametrize("how", ["script", "python -m"])
def test_help_lists_subcommands(how, cloak_cmd, tmp_path):
    cmd = cloak_cmd if how == "script" else [sys.executable, "-m", "cloak"]
    proc = subprocess.run([*cmd, "--help"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: cloak ")
    for sub in ("predict", "apply", "train", "data", "sweep", "plot", "gui"):
        assert sub in proc.stdout


def test_resume_keeps_earlier_figures(folder, tmp_path, capsys):
    out = tmp_path / "out"
    first = next(folder.glob("*.wav"))
    assert main(["apply", str(first), "-o", str(out), "--mode", "subtle", "--steps", "2", "-q"]) == 0
    earlier = list(csv.DictReader(open(out / "cloak-report.csv")))
    assert main(["apply", str(first), str(folder / "sub"), "-o", str(out), "--mode", "subtle", "--steps", "2",
                 "--resume", "-q"]) == 0
    assert "1 cloaked, 1 skipped" in capsys.readouterr().err
    rows = list(csv.DictReader(open(out / "cloak-report.csv")))
    assert [r["status"] for r in rows] == ["done", "done"]
    assert rows[0] == earlier[0]  # the skipped file's figures, as first reported
    assert all(float(r["snr_db"]) > 30 and r["emotion_before"] in EMOTIONS for r in rows)


def test_killed_batch_resumes_to_a_complete_report(folder, tmp_path, cloak_cmd):
    """SIGKILL after the first file: the report of the finished file survives, and --resume completes it."""
    import signal
    import time

    for i in range(3):
        shutil.copy(next(folder.glob("*.wav")), folder / f"extra{i}.wav")
    out, report = tmp_path / "out", tmp_path / "out" / "cloak-report.csv"
    cmd = [*cloak_cmd, "apply", str(folder), "-o", str(out), "--mode", "subtle", "--steps", "40", "-q"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not report.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = [r["file"] for r in csv.DictReader(open(report)) if r["status"] == "done"]
    assert len(done_before) == 1  # killed within 10 ms of the first report; a 40-step file takes far longer
    assert subprocess.run([*cmd, "--resume"], cwd=tmp_path, capture_output=True, timeout=300).returncode == 0
    rows = list(csv.DictReader(open(report)))
    assert sorted(r["file"] for r in rows) == sorted(str(j.src) for j in batch.plan([folder]))  # each once
    assert all(r["status"] == "done" and float(r["snr_db"]) > 20 and r["emotion_after"] in EMOTIONS for r in rows)


@pytest.mark.requires_asr
def test_thorough_mode_cloaks_with_its_guarded_attack_and_can_drop_the_guard(tmp_path, capsys):
    """``--mode thorough``: neutralized, this slow sad clip retimed further than by the neutral mode, and
    attacked with the words guard; ``--no-words-guard`` and ``--language`` reach its attack stage; the
    subtle mode has no guard to drop."""
    from pathlib import Path

    demo = Path(__file__).resolve().parents[1] / "demo" / "sad.flac"
    assert main(["apply", str(demo), "-o", str(tmp_path / "neutral.flac"), "--mode", "neutral", "--judge", "none", "-q"]) == 0
    for extra in (["--language", "en"], ["--no-words-guard"]):
        out = tmp_path / f"calm{len(extra)}.flac"
        assert main(["apply", str(demo), "-o", str(out), "--mode", "thorough", "--judge", "none", "-q", *extra]) == 0
        assert 0.6 * sf.info(tmp_path / "neutral.flac").frames < sf.info(out).frames < sf.info(tmp_path / "neutral.flac").frames
    assert main(["apply", str(demo), "-o", str(tmp_path / "x.flac"), "--mode", "subtle", "--no-words-guard", "-q"]) == 2
    assert "--no-words-guard" in capsys.readouterr().err


def test_mode_options_keep_the_presets_guard_schedule():
    """``cloak apply`` and the GUI run the thorough mode the bench measures (its attack's guard taken
    once, not the attack presets' every 5 steps); ``--steps`` changes only the steps."""
    from dataclasses import replace

    from cloak.chain import MODES
    from cloak.cli import _mode, build_parser
    from cloak.gui.session import make_mode

    parse = lambda *a: build_parser().parse_args(["apply", "x.wav", *a])  # noqa: E731
    thorough = MODES["thorough"]
    assert thorough.attack.words_every > thorough.attack.steps // 2
    assert _mode(parse("--mode", "thorough")) == thorough
    assert _mode(parse("--mode", "thorough", "--steps", "4")).attack == replace(thorough.attack, steps=4)
    assert _mode(parse("--mode", "thorough", "--strength", "high")).attack.words_every == thorough.attack.words_every
    assert make_mode("thorough", attack=MODES["subtle"].attack) == thorough


def test_readme_first_command_cloaks_the_shipped_demo(tmp_path, cloak_cmd):
    """The README's first command needs nothing beside the clone: its input is in the repository."""
    import re
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    first = re.search(r"```bash\n(.+?)\n```", (repo / "README.md").read_text(encoding="utf-8")).group(1)
    args = first.split("&& cloak ", 1)[1].split()
    assert args[:2] == ["apply", "demo/sad.flac"] and (repo / args[1]).is_file()
    for extra in ([], ["--mode", "subtle"]):
        out = tmp_path / "-".join(["cloaked", *extra])
        proc = subprocess.run([*cloak_cmd, "apply", str(repo / args[1]), "-o", str(out), "-q", *extra],
                              capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert sf.info(out / "sad.flac").frames > 0
        row = next(csv.DictReader(open(out / "cloak-report.csv")))
        assert row["status"] == "done" and row["emotion_before"] == "sadness"
    # the subtle mode's perturbation turns the surrogate's confident reading to another emotion
    assert row["emotion_after"] != "sadness" and float(row["snr_db"]) > 34


def test_band_gain_needs_the_neutral_mode_and_a_sane_size(folder, tmp_path, capsys):
    out = tmp_path / "out"
    for extra, words in ((["--mode", "subtle", "--band-gain", "3"], ("--band-gain", "subtle")),
                         (["--band-gain", "40"], ("--band-gain", "max_gain_db")),
                         (["--mode", "neutral", "--no-words-guard"], ("--no-words-guard", "--band-gain")),
                         (["--mode", "neutral", "--language", "de"], ("--language", "--band-gain"))):
        assert main(["apply", str(folder), "-o", str(out), *extra, "-q"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and all(w in err[0] for w in words)
        assert not out.exists() or not any(out.rglob("*.wav"))


def test_flatten_loudness_needs_the_neutral_mode(folder, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["apply", str(folder), "-o", str(out), "--mode", "subtle", "--flatten-loudness", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--flatten-loudness" in err[0] and "subtle" in err[0]
    assert not out.exists() or not any(out.rglob("*.wav"))
