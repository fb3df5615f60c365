"""Optimizers (SGD, Adam, AdamW) with per-parameter state, and gradient clipping."""

from corenn.optim.adam import Adam, AdamW
from corenn.optim.clip import clip_grad_norm
from corenn.optim.optimizer import Optimizer
from corenn.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "clip_grad_norm"]
