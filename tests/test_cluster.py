"""`cloak apply --workers / --cluster` on a real Ray instance on 127.0.0.1: the same outputs as
one process, Ctrl-C and a killed worker lose nothing, an unreachable cluster fails at once."""
import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
import soundfile as sf

from cloak import batch, cluster
from cloak.audio import atomic_path
from cloak.chain import MODES
from cloak.cli import main
from cloak.cloaker import CloakConfig

pytestmark = pytest.mark.slow  # each test starts or joins a Ray cluster (seconds)
CLOAK = str(Path(sys.executable).with_name("cloak"))
RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def folder(tmp_path, held_out):
    """Six short held-out clips, two of them in a subfolder."""
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for k, u in enumerate(held_out[:6]):
        shutil.copy(u.path, (src / "sub" if k % 3 == 0 else src) / u.path.name)
    return src


@pytest.fixture
def many(tmp_path, held_out):
    """16 held-out clips: enough work to interrupt a run in the middle."""
    src = tmp_path / "many"
    src.mkdir()
    for u in held_out[:16]:
        shutil.copy(u.path, src / u.path.name)
    return src


@pytest.fixture(autouse=True)
def outside_the_source_tree(tmp_path, monkeypatch):
    """Ray workers put the driver's working folder on their path: from the repository root they would
    import the un-mapped source tree (no cloak.models, no cloak.eval) instead of the installed package."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    """A real Ray head on 127.0.0.1 with 2 CPUs (`ray start --head --block`), killed at the end."""
    port = free_port()
    proc = subprocess.Popen([RAY, "start", "--head", "--block", "--port", str(port), "--node-ip-address", "127.0.0.1",
                             "--num-cpus", "2", "--include-dashboard=false", "--disable-usage-stats",
                             "--dashboard-agent-listen-port", str(free_port()), "--object-store-memory", str(100 * 2**20)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
                            cwd=tmp_path_factory.mktemp("head"),
                            env={**os.environ, "RAY_worker_niceness": "0"})  # as fast as plain cloak here
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"ray start --head failed: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.2)
    yield proc, f"127.0.0.1:{port}"
    os.killpg(proc.pid, signal.SIGKILL)  # the head and everything it started (workers die with their raylet)
    proc.wait()


def busy_worker(ancestor: int) -> int | None:
    """Pid of a Ray worker started under ``ancestor`` that is cloaking a file now."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            grandparent = int(Path(f"/proc/{parent}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if title.startswith(b"ray::CloakWorker.cloak") and ancestor in (parent, grandparent):
            return int(pid)
    return None


def wait_for(predicate, timeout=120.0, what="condition"):
    deadline = time.monotonic() + timeout
    while (value := predicate()) in (None, False, []):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)
    return value


def rows(path):
    return list(csv.DictReader(open(path)))


def leftovers(path):
    return [p for p in path.rglob("*") if p.name.endswith(".part")]


def test_workers_give_the_single_process_output(folder, tmp_path, capsys):
    one, two = tmp_path / "one", tmp_path / "two"
    # the default mode (thorough: neutralizer, then the guarded attack) with the default judge in the report
    assert main(["apply", str(folder), "-o", str(one), "-q"]) == 0
    assert main(["apply", str(folder), "-o", str(two), "-q", "--workers", "2"]) == 0
    outs = sorted(p.relative_to(two) for p in two.rglob("*.wav"))
    assert outs == sorted(p.relative_to(folder) for p in folder.rglob("*.wav")) and len(outs) == 6
    for rel in outs:  # sample-exact: same bytes
        assert (two / rel).read_bytes() == (one / rel).read_bytes(), rel
    strip = lambda r: {k: v for k, v in r.items() if k != "output"}  # noqa: E731
    assert [strip(r) for r in rows(two / "cloak-report.csv")] == [strip(r) for r in rows(one / "cloak-report.csv")]
    assert "6 cloaked, 0 skipped, 0 failed" in capsys.readouterr().err


def test_cluster_resume_and_failures(head, folder, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths: the workers' working folder is the head's, not this one
    out = Path("out")
    (folder / "broken.wav").write_text("not audio")
    args = ["apply", "in", "-o", "out", "--mode", "subtle", "--steps", "2", "--judge", "none", "-q", "--cluster", head[1]]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "6 cloaked, 0 skipped, 1 failed" in err and "failed: " in err and "broken.wav" in err
    report = rows(out / "cloak-report.csv")
    assert [r["file"] for r in report] == [str(j.src) for j in batch.plan(["in"])]  # one row per file, in order
    assert {r["status"] for r in report} == {"done", "failed"}
    (folder / "broken.wav").unlink()
    first = Path(report[0]["output"])
    first.write_bytes(b"stale")
    assert main(args + ["--resume"]) == 0
    assert "0 cloaked, 6 skipped, 0 failed" in capsys.readouterr().err
    assert first.read_bytes() == b"stale"  # never replaced without --overwrite


def test_sigint_stops_cleanly(head, many, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([CLOAK, "apply", str(many), "-o", str(out), "-q", "--mode", "subtle", "--steps", "300",
                             "--judge", "none", "--cluster", head[1]],
                            stderr=subprocess.PIPE, text=True,
                            # a shell that starts jobs in the background hands them SIGINT ignored
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for(lambda: list(out.glob("*.wav")), what="a first output")
    proc.send_signal(signal.SIGINT)
    t = time.monotonic()
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130 and "interrupted" in err, err
    assert time.monotonic() - t < 20
    assert leftovers(out) == []
    written = list(out.glob("*.wav"))
    assert 0 < len(written) < 16  # stopped in the middle
    for p in written:  # every output there is complete
        assert sf.info(str(p)).frames == sf.info(str(many / p.name)).frames


def test_killed_worker_loses_no_file(head, many, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([CLOAK, "apply", str(many), "-o", str(out), "-q", "--mode", "subtle", "--steps", "20",
                             "--judge", "none", "--cluster", head[1]],
                            stderr=subprocess.PIPE, text=True)
    wait_for(lambda: list(out.glob("*.wav")), what="a first output")
    os.kill(wait_for(lambda: busy_worker(head[0].pid), what="a busy worker"), signal.SIGKILL)
    err = proc.communicate(timeout=180)[1]
    assert proc.returncode == 0, err
    assert "16 cloaked, 0 skipped, 0 failed" in err
    assert len(rows(out / "cloak-report.csv")) == 16 and len(list(out.glob("*.wav"))) == 16
    assert leftovers(out) == []


def test_worker_that_dies_on_every_try_is_reported(head, folder, tmp_path):
    jobs = batch.plan([folder], tmp_path / "out")
    killed = []

    def kill_first_busy():
        pid = wait_for(lambda: busy_worker(head[0].pid), what="a busy worker")
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    t = threading.Thread(target=kill_first_busy)
    t.start()
    result = cluster.run(jobs, None, replace(MODES["subtle"], attack=CloakConfig(steps=20)), "cpu",
                         cluster.ClusterConfig(address=head[1], workers=1, retries=0))
    t.join()
    assert killed
    assert [o.job for o in result.outcomes] == jobs  # none dropped
    (dead,) = result.failed
    assert "worker died" in dead.error and str(dead.job.src) in dead.error
    assert sum(o.status == "done" for o in result.outcomes) == 5  # the restarted worker went on
    assert leftovers(tmp_path / "out") == []


def test_unreachable_cluster_fails_at_once(folder, tmp_path):
    t = time.monotonic()
    proc = subprocess.run([CLOAK, "apply", str(folder), "-o", str(tmp_path / "out"), "--cluster", f"127.0.0.1:{free_port()}"],
                          capture_output=True, text=True, timeout=60)
    assert time.monotonic() - t < 10
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "cannot reach the Ray cluster" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("address", ["nohost", "host:port", "ray://host:10001", "host:70000"])
def test_bad_cluster_address_is_one_line(address, capsys):
    assert main(["apply", "x.wav", "--cluster", address]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cloak: error: ") and err.count("\n") == 1 and "--cluster" in err


def test_remove_partials_only_removes_temp_files_of_that_output(tmp_path):
    dest = tmp_path / "a.wav"
    tmp = atomic_path(dest)
    other = atomic_path(tmp_path / "a.wav.x.wav")
    keep = [tmp_path / "a.wav", tmp_path / ".a.wav.notes", other]
    for p in keep[:2]:
        p.write_text("x")
    cluster.remove_partials(dest)
    assert not tmp.exists() and all(p.exists() for p in keep)
