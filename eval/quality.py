"""What a listener would judge of cloaked audio: DNSMOS P.835, speaker similarity, PESQ-WB and STOI.

Every metric takes float mono audio ``(time,)`` at :data:`SAMPLE_RATE` (16 kHz) and raises
:class:`ValueError` with one readable line for anything else (empty, NaN, wrong rate).

* :class:`DNSMOS` -- non-intrusive (no reference needed): Microsoft's DNSMOS P.835 model that
  ships inside the ``speechmos`` wheel, predicting the signal (SIG), background (BAK) and overall
  (OVRL) opinion scores on a 1-5 scale. Needing no clean reference, it does not punish a change
  of pitch or timing: the quality score for the neutralizing modes.
* :class:`SpeakerSimilarity` -- cosine similarity of GE2E speaker embeddings (``resemblyzer``'s
  pretrained ``VoiceEncoder``): is the cloaked voice still the user's?
* :func:`pesq_wb`, :func:`stoi` -- intrusive: they compare waveforms sample by sample, so they
  need the clean reference at the same length and fall sharply for any change of pitch or timing.
  They judge the ``subtle`` (additive) mode.
* :class:`QualityMeter` -- all of them for a (clean, cloaked) pair, each model loaded on first use.

Word error rate lives in :mod:`cloak.eval.asr` (:func:`cloak.eval.asr.wer_of`).
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, fields
from importlib import resources

import numpy as np

SAMPLE_RATE = 16_000  # DNSMOS, the GE2E encoder, PESQ wide-band and our models all work at 16 kHz

# DNSMOS scores windows of exactly 9.01 s, one starting every second. A shorter clip is repeated
# (doubled until long enough), as the reference implementation does.
DNSMOS_WINDOW = int(9.01 * SAMPLE_RATE)  # 144_160 samples
DNSMOS_HOP = SAMPLE_RATE
DNSMOS_MODEL = ("dnsmos_models", "sig_bak_ovr.onnx")  # inside the speechmos package
# Calibration of the raw network outputs to P.835 MOS (DNSMOS, non-personalized): one quadratic
# per score, coefficients highest power first.
DNSMOS_CALIBRATION = {
    "sig": (-0.08397278, 1.22083953, 0.0052439),
    "bak": (-0.13166888, 1.60915514, -0.39604546),
    "ovrl": (-0.06766283, 1.11546468, 0.04602535),
}

# The GE2E encoder was trained on speech normalized to -30 dBFS (raised, never lowered) with long
# silences cut by a WebRTC VAD; resemblyzer.preprocess_wav does both. After that, at least one
# 30 ms VAD window of speech must remain to embed.
MIN_VOICED_SAMPLES = 480

METRICS = ("dnsmos", "speaker", "pesq", "stoi")


def check_wave(wave, sample_rate: int = SAMPLE_RATE, name: str = "audio") -> np.ndarray:
    """``wave`` as contiguous float32 ``(time,)`` at 16 kHz, or a one-line :class:`ValueError`."""
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"{name}: quality metrics need {SAMPLE_RATE} Hz audio, got {sample_rate} Hz "
                         "(resample first, e.g. cloak.audio.to_model_rate)")
    wave = np.asarray(wave)
    if wave.ndim != 1:
        raise ValueError(f"{name}: expected mono audio of shape (time,), got shape {wave.shape}")
    if wave.size == 0:
        raise ValueError(f"{name}: audio is empty")
    if not np.issubdtype(wave.dtype, np.floating):
        raise ValueError(f"{name}: expected float samples in [-1, 1], got dtype {wave.dtype}")
    if not np.isfinite(wave).all():
        raise ValueError(f"{name}: audio has NaN or infinite samples")
    return np.ascontiguousarray(wave, dtype=np.float32)


# --- DNSMOS P.835 ---------------------------------------------------------------------------

@dataclass(frozen=True)
class DnsmosScore:
    """DNSMOS P.835 opinion scores (1-5): speech signal, background, overall."""

    sig: float
    bak: float
    ovrl: float


def dnsmos_windows(wave: np.ndarray, hop_seconds: int = 1) -> np.ndarray:
    """The 9.01 s windows DNSMOS averages over, ``(n, DNSMOS_WINDOW)``.

    A clip shorter than a window is doubled until it is long enough. Windows start every second
    while they end before the clip's last whole second, as in the reference implementation
    (``speechmos``); unlike it, window bounds are exact integers, so no window is dropped to float
    rounding (``speechmos`` loses windows 7-23 of clips that are 16 s or longer after doubling).
    ``hop_seconds`` > 1 keeps every so many of those windows: cheaper on long recordings.
    """
    if hop_seconds < 1:
        raise ValueError(f"hop_seconds must be a whole number of seconds >= 1, got {hop_seconds}")
    while wave.size < DNSMOS_WINDOW:
        wave = np.concatenate([wave, wave])
    n = int(math.floor(wave.size / SAMPLE_RATE) - DNSMOS_WINDOW / SAMPLE_RATE) + 1
    starts = np.arange(0, n, hop_seconds) * DNSMOS_HOP
    return np.lib.stride_tricks.sliding_window_view(wave, DNSMOS_WINDOW)[starts]


class DNSMOS:
    """DNSMOS P.835 on the CPU with one onnxruntime thread and no spinning (0.5 s CPU per window).

    onnxruntime's default thread pool spins on every core between calls and takes about ten times
    as long on a busy 2-core machine. The session is built once; :meth:`score` is thread-safe.
    A window starts every second, so a long recording costs about 0.5 s CPU per second of audio;
    ``hop_seconds=9`` scores non-overlapping windows instead (the reference uses 1).
    """

    def __init__(self, hop_seconds: int = 1):
        import onnxruntime as ort

        if hop_seconds < 1:
            raise ValueError(f"hop_seconds must be a whole number of seconds >= 1, got {hop_seconds}")
        self.hop_seconds = hop_seconds
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        path = resources.files("speechmos").joinpath(*DNSMOS_MODEL)
        with resources.as_file(path) as model:
            self._session = ort.InferenceSession(str(model), sess_options=options,
                                                 providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name

    def score(self, wave, sample_rate: int = SAMPLE_RATE) -> DnsmosScore:
        """SIG, BAK and OVRL of float mono ``wave`` ``(time,)``: calibrated per window, then averaged."""
        windows = dnsmos_windows(check_wave(wave, sample_rate), self.hop_seconds)
        # One window per call: batching is no faster on one thread (1.2 s vs 1.0 s a window, busy machine).
        raw = np.concatenate([self._session.run(None, {self._input: np.ascontiguousarray(w[None])})[0]
                              for w in windows])
        mos = {key: float(np.mean(np.polyval(DNSMOS_CALIBRATION[key], raw[:, col].astype(np.float64))))
               for col, key in enumerate(("sig", "bak", "ovrl"))}
        return DnsmosScore(**mos)


# --- speaker similarity ---------------------------------------------------------------------

class SpeakerSimilarity:
    """Cosine similarity of GE2E utterance embeddings (resemblyzer's pretrained ``VoiceEncoder``).

    Audio goes through ``resemblyzer.preprocess_wav`` first, as the encoder's training data did:
    the level is raised to -30 dBFS (the encoder reads mel *power*, so level matters) and
    silences longer than about 0.2 s are cut, so a change of pauses or loudness alone does not
    read as a different speaker. Uses torch on the CPU with torch's global thread setting.
    """

    def __init__(self, device: str = "cpu"):
        with warnings.catch_warnings():  # webrtcvad imports pkg_resources; resemblyzer a deprecated scipy path
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)
            from resemblyzer import VoiceEncoder, preprocess_wav
        self._preprocess = preprocess_wav
        self._encoder = VoiceEncoder(device=device, verbose=False)

    def embed(self, wave, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        """The unit-norm speaker embedding ``(256,)`` of float mono ``wave`` ``(time,)``."""
        wave = check_wave(wave, sample_rate)
        if not np.any(wave):
            raise ValueError("audio is silent: no voice to embed")
        voiced = self._preprocess(np.clip(wave, -1.0, 1.0))  # its VAD casts to int16, which would wrap
        if voiced.size < MIN_VOICED_SAMPLES:
            raise ValueError(f"no speech found in {wave.size / SAMPLE_RATE:.2f} s of audio: no voice to embed")
        return self._encoder.embed_utterance(voiced.astype(np.float32))

    def similarity(self, a, b, sample_rate: int = SAMPLE_RATE) -> float:
        """Cosine similarity of the voices in ``a`` and ``b`` (1: same embedding)."""
        return cosine(self.embed(a, sample_rate), self.embed(b, sample_rate))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embedding vectors."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"embeddings differ in shape: {a.shape} vs {b.shape}")
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# --- intrusive: PESQ wide-band and STOI -----------------------------------------------------

def pesq_wb(ref, deg, sample_rate: int = SAMPLE_RATE) -> float:
    """Wide-band PESQ (ITU-T P.862.2 MOS-LQO, 1.04-4.64) of ``deg`` against ``ref``, same length."""
    ref, deg = _same_length(ref, deg, sample_rate)
    from pesq import PesqError, pesq

    try:
        return float(pesq(SAMPLE_RATE, ref, deg, "wb"))
    except PesqError as e:  # e.g. no utterance detected in the reference
        raise ValueError(f"PESQ cannot score this pair: {type(e).__name__}: {e}") from e


def stoi(ref, deg, sample_rate: int = SAMPLE_RATE) -> float:
    """Short-time objective intelligibility (0-1) of ``deg`` against ``ref``, same length."""
    ref, deg = _same_length(ref, deg, sample_rate)
    from pystoi import stoi as pystoi_stoi

    return float(pystoi_stoi(ref.astype(np.float64), deg.astype(np.float64), SAMPLE_RATE, extended=False))


def _same_length(ref, deg, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    ref = check_wave(ref, sample_rate, "reference")
    deg = check_wave(deg, sample_rate, "degraded")
    if ref.size != deg.size:
        raise ValueError(f"intrusive metrics compare sample by sample: reference has {ref.size} samples, "
                         f"degraded {deg.size}")
    return ref, deg


# --- all of them ----------------------------------------------------------------------------

@dataclass(frozen=True)
class CleanReference:
    """What :class:`QualityMeter` keeps of a clean clip, so it is scored once for many cloaks."""

    wave: np.ndarray
    dnsmos: DnsmosScore | None
    embedding: np.ndarray | None


@dataclass(frozen=True)
class QualityReport:
    """Listener-side quality of a cloaked clip against its clean original.

    A metric that was not asked for is ``None``. PESQ and STOI are ``nan`` when the cloak changed
    the length (they compare sample by sample), with the reason in ``note``.
    """

    dnsmos_clean: DnsmosScore | None = None
    dnsmos_cloaked: DnsmosScore | None = None
    speaker_similarity: float | None = None
    pesq_wb: float | None = None
    stoi: float | None = None
    note: str = ""

    def to_row(self) -> dict[str, float | str | None]:
        """Flat columns for a CSV report: ``dnsmos_ovrl_clean``, ..., ``speaker_similarity``, ``note``."""
        row: dict[str, float | str | None] = {}
        for side in ("clean", "cloaked"):
            score = getattr(self, f"dnsmos_{side}")
            for f in fields(DnsmosScore):
                row[f"dnsmos_{f.name}_{side}"] = None if score is None else getattr(score, f.name)
        row.update(speaker_similarity=self.speaker_similarity, pesq_wb=self.pesq_wb, stoi=self.stoi, note=self.note)
        return row


class QualityMeter:
    """DNSMOS of both clips, speaker similarity and (same length only) PESQ-WB and STOI.

    ``metrics`` picks a subset of :data:`METRICS`; each model loads on first use, so a caller that
    wants only PESQ never loads onnxruntime or torch. ``dnsmos_hop_seconds`` goes to :class:`DNSMOS`.
    """

    def __init__(self, metrics: Iterable[str] = METRICS, device: str = "cpu", dnsmos_hop_seconds: int = 1):
        self.metrics = tuple(metrics)
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown or not self.metrics:
            raise ValueError(f"unknown quality metrics {unknown} (choose from {', '.join(METRICS)})")
        self.device = device
        self.dnsmos_hop_seconds = dnsmos_hop_seconds
        self._dnsmos: DNSMOS | None = None
        self._speaker: SpeakerSimilarity | None = None

    @property
    def dnsmos(self) -> DNSMOS:
        if self._dnsmos is None:
            self._dnsmos = DNSMOS(self.dnsmos_hop_seconds)
        return self._dnsmos

    @property
    def speaker(self) -> SpeakerSimilarity:
        if self._speaker is None:
            self._speaker = SpeakerSimilarity(self.device)
        return self._speaker

    def reference(self, clean, sample_rate: int = SAMPLE_RATE) -> CleanReference:
        """Score the clean clip once; pass the result to :meth:`compare` for each cloaked version."""
        clean = check_wave(clean, sample_rate, "clean")
        return CleanReference(clean,
                              self.dnsmos.score(clean) if "dnsmos" in self.metrics else None,
                              self.speaker.embed(clean) if "speaker" in self.metrics else None)

    def compare(self, reference: CleanReference, cloaked, sample_rate: int = SAMPLE_RATE) -> QualityReport:
        """Quality of ``cloaked`` against the clean clip behind ``reference``."""
        cloaked = check_wave(cloaked, sample_rate, "cloaked")
        out: dict = {}
        if reference.dnsmos is not None:
            out.update(dnsmos_clean=reference.dnsmos, dnsmos_cloaked=self.dnsmos.score(cloaked))
        if reference.embedding is not None:
            out["speaker_similarity"] = cosine(reference.embedding, self.speaker.embed(cloaked))
        intrusive = [m for m in ("pesq", "stoi") if m in self.metrics]
        if intrusive and reference.wave.size != cloaked.size:
            out.update({"pesq_wb" if m == "pesq" else m: math.nan for m in intrusive})
            out["note"] = (f"PESQ/STOI undefined: the cloak changed the length "
                           f"({reference.wave.size} -> {cloaked.size} samples)")
        else:
            if "pesq" in intrusive:
                out["pesq_wb"] = pesq_wb(reference.wave, cloaked)
            if "stoi" in intrusive:
                out["stoi"] = stoi(reference.wave, cloaked)
        return QualityReport(**out)

    def measure(self, clean, cloaked, sample_rate: int = SAMPLE_RATE) -> QualityReport:
        """Quality of ``cloaked`` against ``clean`` (both float mono ``(time,)``)."""
        return self.compare(self.reference(clean, sample_rate), cloaked, sample_rate)
