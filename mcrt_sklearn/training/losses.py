"""Fine-tuning losses (torch only)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["regression_loss", "RegressionLoss"]


def regression_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE of standardised targets (the reference's ``compute_regression``)."""
    return F.mse_loss(pred.reshape(-1), target.reshape(-1).to(pred.dtype))


class RegressionLoss(torch.nn.Module):
    """:func:`regression_loss` as a module (a skorch criterion)."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return regression_loss(pred, target)
