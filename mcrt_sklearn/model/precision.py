"""Inference precision: float32, or bfloat16 autocast (torch only).

``precision="bf16"`` runs the matrix products of a forward pass in bfloat16 through
``torch.autocast`` (on GPUs with bf16 units, and on CPUs, where it is emulated unless the
CPU has bf16 instructions); the weights stay float32 and outputs are returned as float32.
The accuracy against float32 is measured by ``benchmarks/inference_precision.py``.
"""

from __future__ import annotations

import contextlib

import torch

__all__ = ["PRECISIONS", "inference_autocast", "check_precision"]

#: Inference precisions of the estimators.
PRECISIONS = ("fp32", "bf16")


def check_precision(precision: str) -> str:
    """``precision`` if known, else a clear ``ValueError``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return precision


def inference_autocast(precision: str, device) -> contextlib.AbstractContextManager:
    """The autocast context of ``precision`` on ``device`` (a no-op for ``"fp32"``)."""
    if check_precision(precision) == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
