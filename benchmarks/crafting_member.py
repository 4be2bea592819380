"""A RAVDESS member in the default mode's crafting ensemble: does it reach RAVDESS's independent judges?

The default (thorough) mode's adversarial stage crafts against the EmoDB surrogate alone. Its
smooth cousin, the band-gain equalizer, crossed to RAVDESS's other families once a RAVDESS-trained
member crafted beside the surrogate (README: *Smooth adversarial parameters*). This measures the
same for the sample-level stage: the surrogate's architecture is trained on RAVDESS actors 01-16
(8 classes, the surrogate's recipe and seed; it crafts, so it judges nothing), and the thorough
mode runs twice on the held-out clips: as shipped, and with the attack's objective summed over
both members (each member's own top-3 clean classes left, its log-probabilities its logits).

It prints the independent judges' accuracy (the Whisper probe is left out: it helps craft this
mode), speaker similarity to the clean clip, DNSMOS OVRL (every 4th clip) and Whisper-base WER, then
the paired change in each judge's probability of the true emotion (95 % bootstrap interval).
Speakers 03+08 and RAVDESS actors 17-20 are never trained on.

    OMP_NUM_THREADS=1 python benchmarks/crafting_member.py   # ~60 min on this 2-core CPU (both corpora)
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace
from unittest import mock

import numpy as np
import torch
from torch import nn

import cloak.attacks as attacks
from cloak.chain import MODES, Chain
from cloak.emodb import EMOTIONS
from cloak.eval.bench import held_out
from cloak.eval.compare import Comparison
from cloak.eval.judges import available_judges, load_judge
from cloak.eval.judges.data import CORPORA, corpus_clips
from cloak.metrics import accuracy, uar
from cloak.model import CNNConfig, build_recognizer, load_recognizer
from cloak.train import TrainConfig, extract_features, predict_proba, train_cnn

SIZES = (len(EMOTIONS), len(CORPORA["ravdess"]))


class Members(nn.Module):
    """The members' log-probabilities side by side: an objective reads each member's own slice."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.log_softmax(m(x), -1) for m in self.members], -1)


def each_member(logits: torch.Tensor, clean_probs: torch.Tensor) -> torch.Tensor:
    """The shipped objective (leave the clean top-3) summed over the members' slices."""
    bounds = np.cumsum((0, *SIZES))
    return sum(attacks.away_from_top_k(logits[:, a:b], clean_probs[:, a:b]) for a, b in zip(bounds[:-1], bounds[1:]))


def ravdess_member() -> nn.Module:
    """The surrogate's architecture and recipe on RAVDESS actors 01-16; prints its held-out accuracy."""
    train, held = corpus_clips("ravdess")
    cnn = train_cnn(extract_features(train), [c.label for c in train], TrainConfig(), CNNConfig(n_classes=SIZES[1]))
    y = [c.label for c in held]
    pred = predict_proba(cnn, extract_features(held)).argmax(1).tolist()
    print(f"RAVDESS member: held-out actors 17-20 accuracy {accuracy(y, pred):.3f}, UAR {uar(y, pred, SIZES[1]):.3f}",
          flush=True)
    return build_recognizer(cnn).eval()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default="emodb,ravdess", help="held-out clips to cloak, comma-separated (default: %(default)s)")
    p.add_argument("--limit", type=int, help="only the first N held-out clips of each corpus")
    args = p.parse_args()
    torch.set_num_threads(1)
    t0 = time.time()
    surrogate, member = load_recognizer(), ravdess_member()
    mode = MODES["thorough"]
    wide = tuple(f"class{i}" for i in range(sum(SIZES)))  # the chain's surrogate readout, as wide as the members
    with mock.patch.dict(attacks.OBJECTIVES, {"each-member": each_member}):
        chains = {"thorough (shipped)": lambda: (Chain(surrogate, mode), EMOTIONS),
                  "+ RAVDESS member": lambda: (Chain(Members([surrogate, member]),
                                                     replace(mode, attack=replace(mode.attack, objective="each-member"))),
                                               wide)}
        for corpus in args.corpus.split(","):
            clips = held_out(corpus, args.limit)
            compare = Comparison(clips, [load_judge(n) for n in available_judges(corpus) if "whisper" not in n])
            print(f"\n{corpus} held-out ({len(clips.waves)} clips): accuracy per judge (hiding ratio)", flush=True)
            runs = {}
            for name, make in (("clean", None), *chains.items()):
                if make is None:
                    outs = clips.waves
                else:
                    chain, readout = make()
                    with mock.patch("cloak.cloaker.EMOTIONS", readout), mock.patch("cloak.chain.EMOTIONS", readout):
                        outs = [chain.cloak(w, 16_000)[0] for w in clips.waves]
                runs[name] = compare.score(outs)
                print(compare.row(name, runs[name]), flush=True)
            print("with the member - shipped, paired over the clips (95 % bootstrap interval):")
            print("\n".join(compare.changes(runs["+ RAVDESS member"], runs["thorough (shipped)"])), flush=True)
    print(f"\n{(time.time() - t0) / 60:.0f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
