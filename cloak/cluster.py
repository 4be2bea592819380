"""Batch cloaking on Ray: N worker processes on this machine, or the CPUs of an existing cluster.

The driver plans jobs as :mod:`cloak.batch` does and hands them to worker actors one at a
time. Each actor loads the model once (checked against the driver's by SHA-256), uses one
torch thread and runs :func:`cloak.batch.run` on one job, so outputs (written atomically by
the worker) and report rows are those of a single process. A worker that dies is restarted and its file
retried :data:`RETRIES` times, then reported failed. Ctrl-C asks every worker to stop at
its next attack step (its temp file is deleted), then the temp files of the files in flight
are removed, so nothing half-written is left.

With a cluster, every node needs cloak and the same Ray installed, and sees the inputs and
outputs at the same paths (a shared filesystem); the driver must run on a node of it.
"""
from __future__ import annotations

import logging
import os
import re
import resource
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


def _use_ray_token() -> None:
    """Send Ray's token when this machine has one (before ray is imported: it reads the mode once).

    Ray turns token mode on by itself for a new local instance and ``address="auto"``, not for
    an explicit address, yet a head started where a token exists requires it.
    """
    home_token = Path.home() / ".ray" / "auth_token"
    if "RAY_AUTH_MODE" not in os.environ and (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
                                             or home_token.is_file()):
        os.environ["RAY_AUTH_MODE"] = "token"


_use_ray_token()

import ray  # noqa: E402
import torch  # noqa: E402
from ray import exceptions as rex  # noqa: E402

from cloak import batch  # noqa: E402
from cloak.batch import BatchResult, Job, Outcome  # noqa: E402
from cloak.chain import Chain, Mode  # noqa: E402
from cloak.model import ModelError, default_model_path, load_recognizer, sha256_file  # noqa: E402
from cloak.ray_address import check_reachable, quick_join, split_address  # noqa: E402

log = logging.getLogger(__name__)

RETRIES = 2  # default re-runs of a file whose worker died
POLL_S = 0.5  # how often the driver asks the workers how far they are
STOP_WAIT_S = 10.0  # after Ctrl-C, how long workers get to stop at their next step
RECOVER_S = 120.0  # a worker that died and is not restarted within this is given up
LOCAL_OBJECT_STORE = 100 * 2**20  # bytes: only the model and the outcomes travel through it


@dataclass(frozen=True)
class ClusterConfig:
    """Where to run: ``address`` None starts ``workers`` local worker processes; otherwise the
    cluster at ``HOST:PORT`` is joined and ``workers`` caps its workers (None: one per CPU).
    ``retries``: re-runs of a file whose worker died, before it is reported failed."""

    workers: int | None = None
    address: str | None = None
    threads: int = 1
    retries: int = RETRIES

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {self.workers}")
        if self.address is None and self.workers is None:
            raise ValueError("give the number of workers or a cluster address")
        if self.address is not None:
            split_address(self.address)
        if self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")
        if self.retries < 0:
            raise ValueError(f"retries must be at least 0, got {self.retries}")


class Scorer(Protocol):
    """Extra report columns for a finished file (e.g. an independent judge's reading)."""

    def score_files(self, src: Path, dest: Path) -> dict: ...


class Stopped(Exception):
    """Raised inside a worker at its next attack step once the driver asked it to stop."""


@ray.remote(concurrency_groups={"control": 1})
class CloakWorker:
    """One worker process: a cloaker built once, one file at a time; progress and stop
    requests are served on a second thread while a file is being cloaked."""

    def __init__(self, model: str | None, sha256: str, mode: Mode, device: str, threads: int,
                 scorer: Callable[[], Scorer] | None = None) -> None:
        torch.set_num_threads(threads)
        self.scorer = scorer() if scorer is not None else None
        model = model or default_model_path()  # None: the model shipped with this node's cloak
        if sha256_file(model) != sha256:
            raise ModelError(f"{model} on {socket.gethostname()} is not the driver's model (SHA-256 differs)")
        self.cloaker = Chain(load_recognizer(model, device), mode, device)
        self.stopping = False
        self.current: tuple[int, float] | None = None
        # Restarted after a crash: the job it was on comes first again; clear that one's temp file.
        self.restarted = ray.get_runtime_context().was_current_actor_reconstructed

    def cloak(self, index: int, job: Job, overwrite: bool, resume: bool, new: bool) -> Outcome:
        """Cloak one job. ``new``: its output did not exist when the driver handed it out, so
        one that exists now was written by an earlier try of this job (killed after the rename)."""
        if self.stopping:
            raise Stopped()
        if self.restarted:
            remove_partials(job.dest)
            self.restarted = False
        self.current = (index, 0.0)

        def progress(_job: Job, fraction: float) -> None:
            if self.stopping:
                raise Stopped()
            self.current = (index, fraction)

        try:
            outcome = batch.run([job], self.cloaker, overwrite=overwrite or new, resume=resume,
                                on_progress=progress).outcomes[0]
            if outcome.status == "done" and self.scorer is not None:
                outcome.extra = self.scorer.score_files(job.src, job.dest)
            return outcome
        finally:
            self.current = None

    @ray.method(concurrency_group="control")
    def progress(self) -> tuple[int, float] | None:
        return self.current

    @ray.method(concurrency_group="control")
    def stop(self) -> None:
        self.stopping = True

    @ray.method(concurrency_group="control")
    def stats(self) -> tuple[int, float]:
        """(process id, peak resident memory in MB)."""
        return os.getpid(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def connect(cluster: ClusterConfig) -> int:
    """Start a local Ray instance or join the cluster; returns how many workers to run."""
    quiet = dict(logging_level=logging.ERROR, log_to_driver=False, configure_logging=True)
    if cluster.address is None:
        try:
            # Ray runs workers at nice 15 by default; here they get the priority of `cloak` itself.
            ray.init(address="local", num_cpus=cluster.workers, include_dashboard=False,
                     object_store_memory=LOCAL_OBJECT_STORE, _system_config={"worker_niceness": 0}, **quiet)
        except Exception as e:  # Ray raises bare Exception when its processes start too slowly
            raise ConnectionError(f"could not start Ray on this machine: {str(e).splitlines()[0]}") from None
        return cluster.workers
    host, port = check_reachable(cluster.address)
    quick_join()
    try:
        ray.init(address=f"{host}:{port}", **quiet)
    except (ConnectionError, RuntimeError, rex.RayError) as e:
        raise ConnectionError(f"cannot join the Ray cluster at {cluster.address}: {str(e).splitlines()[0]}") from None
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if cpus < 1:
        raise ConnectionError(f"the Ray cluster at {cluster.address} has no CPUs")
    if cluster.workers is not None and cluster.workers > cpus:
        log.warning("the cluster has %d CPUs: running %d workers, not %d", cpus, cpus, cluster.workers)
    return min(cluster.workers or cpus, cpus)


def run(jobs: list[Job], model: str | os.PathLike | None, mode: Mode, device: str, cluster: ClusterConfig, *,
        overwrite: bool = False, resume: bool = False, scorer: Callable[[], Scorer] | None = None,
        on_progress: Callable[[Job, float], None] | None = None,
        on_done: Callable[[Outcome], None] | None = None) -> BatchResult:
    """Cloak every job in ``mode`` on Ray workers with the checkpoint ``model`` (None: the shipped
    one); same contract as :func:`cloak.batch.run`.

    ``scorer`` (picklable) builds, once per worker, what fills ``Outcome.extra`` of finished
    files. Outcomes come back in job order, one per job. Ctrl-C (``KeyboardInterrupt``) stops the
    workers, removes the temp files of the jobs in flight and is re-raised.
    """
    started = time.perf_counter()
    n_workers = connect(cluster)
    try:
        sha256 = sha256_file(model or default_model_path())
        path = None if model is None else str(Path(model).absolute())
        # Ray starts each worker with OMP_NUM_THREADS=1; the words guard's Whisper then rounds a few
        # samples differently from this process. The driver's setting (unset: every core) keeps the
        # workers' output sample-exact with a single-process run on the same machine.
        omp = os.environ.get("OMP_NUM_THREADS") or str(len(os.sched_getaffinity(0)))
        options = dict(num_cpus=1, num_gpus=1 if device == "cuda" else 0, max_restarts=-1,
                       max_task_retries=cluster.retries, runtime_env={"env_vars": {"OMP_NUM_THREADS": omp}})
        workers = [CloakWorker.options(**options).remote(path, sha256, mode, device, cluster.threads, scorer)
                   for _ in range(min(n_workers, len(jobs)))]
        log.info("%d workers on Ray, connected in %.1f s", len(workers), time.perf_counter() - started)
        outcomes = _Scheduler(jobs, workers, cluster.retries + 1, overwrite, resume, on_progress, on_done).run()
        _log_stats(workers)
    finally:
        ray.shutdown()
    return BatchResult([outcomes[i] for i in range(len(jobs))])


def _log_stats(workers) -> None:
    for ref in [w.stats.remote() for w in workers]:
        try:
            log.info("worker %d: peak RSS %.0f MB", *ray.get(ref, timeout=30))
        except rex.RayError:
            pass  # a worker restarting after a crash has no figure worth reporting


class _Scheduler:
    """Keeps every worker busy with one job at a time until all jobs have an outcome.

    A worker whose process died gets no job until Ray has restarted it (a control call comes
    back), so no job is sent to a dead process; one not back after :data:`RECOVER_S` is given
    up, and when none is left the remaining jobs are reported failed.
    """

    def __init__(self, jobs, workers, tries, overwrite, resume, on_progress, on_done) -> None:
        self.jobs, self.workers, self.tries = jobs, workers, tries
        self.overwrite, self.resume, self.on_progress, self.on_done = overwrite, resume, on_progress, on_done
        self.todo = deque(range(len(jobs)))
        self.idle = list(workers)
        self.running: dict[ray.ObjectRef, tuple[int, object]] = {}  # task -> (job index, worker)
        self.recovering: dict[object, list] = {}  # worker -> [pending control call or None, died at, asked at]
        self.outcomes: dict[int, Outcome] = {}

    def run(self) -> dict[int, Outcome]:
        last_poll = time.monotonic()
        try:
            while self.todo or self.running:
                while self.idle and self.todo:
                    i, w = self.todo.popleft(), self.idle.pop()
                    job = self.jobs[i]  # absolute paths: a worker's working folder is not the driver's
                    sent = Job(job.src.absolute(), job.dest.absolute())
                    self.running[w.cloak.remote(i, sent, self.overwrite, self.resume, not job.dest.exists())] = (i, w)
                if not (self.running or self.recovering):
                    self._fail_rest()
                    break
                waiting = list(self.running) + [r[0] for r in self.recovering.values() if r[0] is not None]
                ready, _ = ray.wait(waiting, num_returns=1, timeout=POLL_S)
                for ref in ready:
                    if ref in self.running:
                        self._finish(ref)
                self._check_recovering()
                if self.on_progress and self.running and time.monotonic() - last_poll >= POLL_S:
                    _poll(self.running, self.jobs, self.on_progress)
                    last_poll = time.monotonic()
        except KeyboardInterrupt:
            _stop(self.workers, self.running, self.jobs)
            raise
        return self.outcomes

    def _finish(self, ref: ray.ObjectRef) -> None:
        i, w = self.running.pop(ref)
        outcome, crashed = _outcome(ref, self.jobs[i], self.tries)
        outcome.job = self.jobs[i]  # the paths as planned, for the report
        if crashed:
            now = time.monotonic()
            self.recovering[w] = [w.stats.remote(), now, now]
        else:
            self.idle.append(w)
        self._done(i, outcome)

    def _check_recovering(self) -> None:
        now = time.monotonic()
        for w, state in list(self.recovering.items()):
            ref, died, asked = state
            if ref is not None and ray.wait([ref], timeout=0)[0]:
                try:
                    ray.get(ref)
                    del self.recovering[w]
                    self.idle.append(w)
                    continue
                except rex.RayError:
                    state[0] = None  # still restarting: ask again below
            if now - died > RECOVER_S:
                log.warning("a worker did not come back %.0f s after it died; going on without it", RECOVER_S)
                del self.recovering[w]
            elif state[0] is None and now - asked >= 1.0:
                state[0], state[2] = w.stats.remote(), now

    def _fail_rest(self) -> None:
        while self.todo:
            i = self.todo.popleft()
            self._done(i, Outcome(self.jobs[i], "failed", error=f"{self.jobs[i].src}: no worker left"))

    def _done(self, i: int, outcome: Outcome) -> None:
        self.outcomes[i] = outcome
        if self.on_done:
            self.on_done(outcome)


def _outcome(ref: ray.ObjectRef, job: Job, tries: int) -> tuple[Outcome, bool]:
    """The job's outcome, and whether its worker process died."""
    try:
        return ray.get(ref), False
    except rex.RayTaskError as e:  # an error that batch.run lets through (a bug, MemoryError)
        cause = e.cause if e.cause is not None else e
        first = str(cause).splitlines()[0] if str(cause) else ""
        return Outcome(job, "failed", error=f"{job.src}: {type(cause).__name__}: {first}"), False
    except rex.RayActorError as e:
        if e.actor_init_failed:
            lines = [ln for ln in str(e).splitlines() if ln.strip()]
            raise ModelError(f"a worker could not start: {lines[-1].strip() if lines else e}") from None
        return _died(job, e, tries), True
    except rex.RayError as e:
        return _died(job, e, tries), True


def _died(job: Job, e: Exception, tries: int) -> Outcome:
    """The job's worker died on every try (killed, out of memory, node lost)."""
    log.info("%s: %s", job.src, e)
    remove_partials(job.dest)
    return Outcome(job, "failed", error=f"{job.src}: the worker died while cloaking it ({tries} {'try' if tries == 1 else 'tries'})")


def _poll(running, jobs, on_progress) -> None:
    refs = [w.progress.remote() for _, w in running.values()]
    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=POLL_S)
    for ref in ready:
        try:
            current = ray.get(ref)
        except rex.RayError:
            continue  # a worker that died is restarting; its job reports itself
        if current is not None:
            on_progress(jobs[current[0]], current[1])


def _stop(workers, running, jobs) -> None:
    """Ask the workers to stop, give them :data:`STOP_WAIT_S`, then clean up what was in flight."""
    try:
        for w in workers:
            w.stop.remote()
        if running:
            ray.wait(list(running), num_returns=len(running), timeout=STOP_WAIT_S)
    except KeyboardInterrupt:
        pass  # a second Ctrl-C: stop waiting
    finally:
        for w in workers:
            ray.kill(w)
        for i, _ in running.values():
            remove_partials(jobs[i].dest)


def remove_partials(dest: Path) -> None:
    """Delete temp files left beside ``dest`` by a worker that was killed while writing it."""
    pattern = re.compile(rf"\.{re.escape(dest.name)}\.[A-Za-z0-9_]{{8}}\.part")
    if dest.parent.is_dir():
        for p in dest.parent.iterdir():
            if pattern.fullmatch(p.name):
                p.unlink(missing_ok=True)


__all__ = ["ClusterConfig", "CloakWorker", "RETRIES", "connect", "remove_partials", "run"]
