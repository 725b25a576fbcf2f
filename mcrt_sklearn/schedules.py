"""Learning-rate schedules shared by every skorch-trained estimator (MCRT and baselines)."""

from __future__ import annotations

__all__ = ["WarmupLinearDecay"]


class WarmupLinearDecay:
    """LambdaLR factor: linear warm-up over ``warmup`` of the steps, then linear decay to 0.

    A class (not a lambda) so that fitted estimators pickle.

    Parameters
    ----------
    total_steps : int
        Optimiser steps of the whole run (epochs × batches per epoch).
    warmup : float
        Fraction of the steps spent warming up.
    """

    def __init__(self, total_steps: int, warmup: float = 0.05):
        self.total_steps = max(int(total_steps), 1)
        self.warmup_steps = int(round(float(warmup) * self.total_steps))

    def __call__(self, step: int) -> float:
        if self.warmup_steps > 0 and step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        rest = max(self.total_steps - self.warmup_steps, 1)
        return max(0.0, (self.total_steps - step) / rest)
