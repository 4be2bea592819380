"""Multi-step FGSM (iterative sign-gradient) attacks and the objectives they climb.

An attack sees only a differentiable ``model(inputs) -> logits``: for the waveform domain
that is ``Sequential(LogMel, cnn)`` on ``(batch, time)`` in [-1, 1]; for the spectrogram
domain it is the CNN on normalized log-mels ``(batch, n_mels, frames)``.
Gradients come from ``torch.autograd.grad``, so model parameters are never touched.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``(logits (B, C), clean_probs (B, C)) -> loss (B,)`` that the attack *increases*."""

TOP_K = 3


def away_from_label(logits: torch.Tensor, clean_probs: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with the clean top-1 (pseudo-)label: classic untargeted FGSM."""
    return F.cross_entropy(logits, clean_probs.argmax(-1), reduction="none")


def away_from_top_k(logits: torch.Tensor, clean_probs: torch.Tensor, k: int = TOP_K) -> torch.Tensor:
    """``-log P(top-k clean classes)``: leave every class the clean audio ranks high.

    Untargeted attacks on a pseudo-label only leave the predicted class and often land on
    the runner-up, which is frequently the true emotion when the clean prediction was wrong.
    """
    top = clean_probs.topk(k, dim=-1).indices
    return torch.logsumexp(logits, -1) - torch.logsumexp(logits.gather(-1, top), -1)


def toward_least_likely(logits: torch.Tensor, clean_probs: torch.Tensor) -> torch.Tensor:
    """Targeted at the class the clean audio ranks lowest (``-CE`` to that class)."""
    return -F.cross_entropy(logits, clean_probs.argmin(-1), reduction="none")


def true_label_objective(labels: torch.Tensor) -> Objective:
    """Research setting: cross-entropy with the known true labels."""
    return lambda logits, clean_probs: F.cross_entropy(logits, labels, reduction="none")


OBJECTIVES: dict[str, Objective] = {
    "ce": away_from_label,
    "topk": away_from_top_k,
    "least-likely": toward_least_likely,
}


def _unit(g: torch.Tensor) -> torch.Tensor:
    """``g`` scaled to unit mean magnitude over all but the batch dimension."""
    return g / (g.abs().flatten(1).mean(1).view(-1, *[1] * (g.dim() - 1)) + 1e-12)


class IterativeFGSM:
    """Multi-step FGSM / L-inf PGD without random start (Kurakin et al. 2017).

    ``x_{t+1} = clip(Proj_{|d| <= bound}(x_t + alpha * bound * sign(grad)))``. ``bound`` is the
    per-element L-inf budget, broadcastable to the input: a scalar ``epsilon`` for the
    spectrogram baseline, or ``epsilon * envelope`` for waveforms so the perturbation sits
    under the speech it hides in. ``alpha`` is a fraction of that budget per step.
    """

    def __init__(
        self, model: nn.Module, *, steps: int, alpha: float, objective: Objective = away_from_top_k,
        clip: tuple[float, float] | None = (-1.0, 1.0),
    ) -> None:
        if steps < 0 or alpha <= 0:
            raise ValueError(f"need steps >= 0 and alpha > 0, got steps={steps}, alpha={alpha}")
        self.model, self.steps, self.alpha, self.objective, self.clip = model, steps, alpha, objective, clip

    def __call__(
        self, inputs: torch.Tensor, bound: torch.Tensor | float, clean_probs: torch.Tensor | None = None,
        callback: Callable[[int], None] | None = None, keep: Callable[[torch.Tensor], torch.Tensor] | None = None,
        keep_weight: float = 1.0, keep_every: int = 1,
    ) -> torch.Tensor:
        """Adversarial version of ``inputs``; ``callback(step)`` after each step (may raise to cancel).

        ``keep(adv)``: the gradient of a loss to *descend* at the same time (the words guard's, shaped
        like ``inputs``), taken afresh every ``keep_every`` steps from the first; each step then follows
        the sign of the objective's gradient minus ``keep_weight`` times the latest ``keep``, each
        scaled to unit mean magnitude per input."""
        if keep_every < 1:
            raise ValueError(f"keep_every must be >= 1, got {keep_every}")
        was_training = self.model.training
        self.model.eval()
        try:
            inputs = inputs.detach()
            if clean_probs is None:
                with torch.no_grad():
                    clean_probs = torch.softmax(self.model(inputs), -1)
            bound = torch.as_tensor(bound, dtype=inputs.dtype, device=inputs.device)
            adv = inputs.clone()
            kept = None
            for step in range(self.steps):
                if keep is not None and step % keep_every == 0:
                    kept = _unit(keep(adv.detach()))
                adv.requires_grad_(True)
                loss = self.objective(self.model(adv), clean_probs).sum()
                (grad,) = torch.autograd.grad(loss, adv)
                with torch.no_grad():
                    if kept is not None:
                        grad = _unit(grad) - keep_weight * kept
                    adv = adv + self.alpha * bound * grad.sign()
                    adv = inputs + torch.maximum(torch.minimum(adv - inputs, bound), -bound)
                    if self.clip is not None:
                        adv = adv.clamp(*self.clip)
                if callback:
                    callback(step + 1)
            return adv.detach()
        finally:
            self.model.train(was_training)
