"""Compute cost of Sarashina-Embedding-v2-1B: the FLOPs of a forward pass on its shapes
(model/profile.py: SHAPES), and the dense bf16 peaks of common GPUs. Used by the GPU benchmark
(MFU) and by `plan` (GPU hours)."""

from __future__ import annotations

import re

import numpy as np

# Dense bf16 peak FLOP/s (no sparsity), from the vendors' data sheets.
PEAK_BF16 = {
    "H100 SXM": 989e12,
    "H100 NVL": 835e12,
    "H100 PCIe": 756e12,
    "H100": 989e12,
    "H200": 989e12,
    "GH200": 989e12,
    "B200": 2250e12,
    "A100": 312e12,
    "L40S": 362e12,
    "L4": 121e12,
    "A10G": 70e12,
}


def model_flops(shapes: dict, lengths: np.ndarray) -> float:
    """Forward FLOPs of rows of these lengths: 2 x non-embedding weights x tokens, plus
    causal attention (QK^T and AV)."""
    h, layers = shapes["hidden_size"], shapes["num_hidden_layers"]
    kv = shapes["num_key_value_heads"] * shapes["head_dim"]
    per_layer = (
        h * (shapes["num_attention_heads"] * shapes["head_dim"]) * 2 + h * kv * 2 + 3 * h * shapes["intermediate_size"]
    )
    params = layers * per_layer  # non-embedding matmul weights (1.04e9 for the real shapes)
    lengths = np.asarray(lengths, dtype=np.float64)
    return float(2 * params * lengths.sum() + 2 * layers * h * np.sum(lengths**2))


def peak_flops(name: str) -> float | None:
    """The dense bf16 peak of a GPU named like torch names it ('NVIDIA H100 80GB HBM3'). A known
    name counts only as a whole word: 'NVIDIA L40' is not an L4 (None: a card not listed)."""
    for key in sorted(PEAK_BF16, key=len, reverse=True):
        if re.search(rf"(?<![A-Za-z0-9]){re.escape(key)}(?![A-Za-z0-9])", name):
            return PEAK_BF16[key]
    return None
