"""Evaluation of cloaked audio: speech recognition, word error rate, signal-to-noise ratio."""
