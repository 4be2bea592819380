"""Is the cloaked voice still the speaker's? Speaker verification (GE2E) on the held-out clips.

Every speaker of the corpus (training and held out) is enrolled from their clean neutral clips; the
held-out speakers' other clips are the trials, clean and cloaked (neutral clips are left out of the
trials: they are the enrolment). Per condition: the pairwise similarity to the clean clip (the
bench's figure), the similarity to the same speaker's own neutral reading of the same sentence, the
mean cosine to the own enrolment and to the others, identification among all enrolled speakers
(with its change from clean and that change's 95 % paired-bootstrap interval over trials) and the
equal error rate (:mod:`cloak.eval.identity`). The clean trials are the reference: a cloak keeps
the voice the speaker's when its trials verify as well as the speaker's own emotional speech does;
the WORLD vocoder alone (calm 0) is the control for what re-synthesis itself costs. Modes run as
`cloak apply` runs them; cloaked audio is cached as the bench caches it.

    OMP_NUM_THREADS=1 python benchmarks/voice_identity.py | tee benchmarks/results/voice_identity.txt   # ~25 min, less with the bench's cache
    OMP_NUM_THREADS=1 python benchmarks/voice_identity.py --corpus emodb --mode neutral --without effort ...   # each cue's cost
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from cloak.chain import DEFAULT_MODE, MODES, Chain
from cloak.emodb import parse_name
from cloak.eval.bench import Clips, bootstrap_interval, held_out, process
from cloak.eval.identity import enrol, identify
from cloak.eval.judges.data import CORPORA, corpus_clips, read_wave
from cloak.eval.quality import SpeakerSimilarity, cosine
from cloak.model import load_recognizer
from listener_ablation import CUES  # benchmarks/, beside this script


def sentence_key(corpus: str, name: str, speaker: str) -> tuple[str, ...]:
    """Speaker and sentence of a clip (RAVDESS: statement and repetition), the same in every emotion."""
    if corpus == "emodb":
        return speaker, parse_name(name).text_code
    fields = name.split("-")
    return speaker, fields[4], fields[5]


def report(corpus: str, modes: list[str], without: list[str], speaker: SpeakerSimilarity) -> None:
    neutral = CORPORA[corpus].index("neutral")
    train, held = corpus_clips(corpus)
    enrol_clips = [c for c in train + held if c.label == neutral]
    enrol_embs = [speaker.embed(read_wave(c.path)) for c in enrol_clips]
    enrolments = enrol(enrol_embs, [c.speaker for c in enrol_clips])
    own_neutral = {sentence_key(corpus, c.path.name, c.speaker): e for c, e in zip(enrol_clips, enrol_embs) if c.held_out}
    clips = held_out(corpus)
    keep = [i for i, label in enumerate(clips.labels) if label != neutral]
    trials = Clips(corpus, [clips.names[i] for i in keep], [clips.waves[i] for i in keep], clips.labels[keep],
                   [clips.texts[i] for i in keep], [clips.speakers[i] for i in keep])
    clean = [speaker.embed(w) for w in trials.waves]
    print(f"{corpus}: {len(trials.names)} trials by {len(set(trials.speakers))} held-out speakers, "
          f"{len(enrolments)} speakers enrolled from {len(enrol_clips)} neutral clips", flush=True)
    model = load_recognizer()
    neutral_mode = MODES["neutral"]
    conditions = {"clean": None, **{m: MODES[m] for m in modes}, "calm 0": neutral_mode.with_strength(0.0),
                  **{f"neutral without {cue}": neutral_mode.with_settings(**{cue: 0.0}) for cue in without}}
    width = max(map(len, conditions))
    clean_hits = None
    for name, mode in conditions.items():
        embs = clean if mode is None else [speaker.embed(w) for w in process(Chain(model, mode), trials)]
        to_clean = np.mean([cosine(a, b) for a, b in zip(embs, clean)])
        pairs = [(e, own_neutral[k]) for e, n, s in zip(embs, trials.names, trials.speakers)
                 if (k := sentence_key(corpus, n, s)) in own_neutral]
        to_neutral = np.mean([cosine(a, b) for a, b in pairs])
        r = identify(embs, trials.speakers, enrolments)
        if clean_hits is None:
            clean_hits, change = r.identified, ""
        else:
            lo, hi = bootstrap_interval(r.identified, clean_hits, seed=0)
            change = f" ({r.top1 - clean_hits.mean():+.3f} [{lo:+.3f}, {hi:+.3f}])"
        print(f"  {name:{width}s} to the clean clip {to_clean:.3f} | to the own neutral reading {to_neutral:.3f} ({len(pairs)}) | "
              f"own enrolment {r.own:.3f}, others {r.others:.3f} | top-1 of {r.speakers} {r.top1:.3f}{change} | EER {r.eer:.3f}", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", action="append", choices=list(CORPORA), help="corpus (repeatable; default both)")
    p.add_argument("--mode", action="append", choices=list(MODES), help=f"mode (repeatable; default {DEFAULT_MODE} and neutral)")
    p.add_argument("--without", action="append", default=[], choices=CUES,
                   help="also the neutral mode with this cue left out (repeatable): what each cue costs the voice")
    args = p.parse_args()
    torch.set_num_threads(1)
    speaker = SpeakerSimilarity()
    for corpus in args.corpus or list(CORPORA):
        report(corpus, args.mode or [DEFAULT_MODE, "neutral"], args.without, speaker)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
