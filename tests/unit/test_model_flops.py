"""FLOPs of a forward pass, checked against torch's own FLOP counter run on one Llama decoder
layer (the public architecture: q/k/v/o projections with grouped KV heads, causal attention,
a gated MLP), built on the meta device so nothing is computed."""

from __future__ import annotations

import numpy as np
import pytest

from sarashina_batch.model.flops import PEAK_BF16, model_flops, peak_flops
from sarashina_batch.model.profile import SHAPES

torch = pytest.importorskip("torch")


def counted_layer_flops(shapes: dict, length: int) -> tuple[float, float]:
    """(matmul FLOPs of the layer's weights, FLOPs of its attention as if not causal), as
    torch.utils.flop_counter counts them."""
    from torch import nn
    from torch.nn import functional as F
    from torch.utils.flop_counter import FlopCounterMode

    h, heads, kv_heads, dim = (
        shapes["hidden_size"],
        shapes["num_attention_heads"],
        shapes["num_key_value_heads"],
        shapes["head_dim"],
    )
    with torch.device("meta"):
        q, k, v = (
            nn.Linear(h, heads * dim, bias=False),
            nn.Linear(h, kv_heads * dim, bias=False),
            nn.Linear(h, kv_heads * dim, bias=False),
        )
        o = nn.Linear(heads * dim, h, bias=False)
        gate, up = (
            nn.Linear(h, shapes["intermediate_size"], bias=False),
            nn.Linear(h, shapes["intermediate_size"], bias=False),
        )
        down = nn.Linear(shapes["intermediate_size"], h, bias=False)
        x = torch.empty(1, length, h)
    with FlopCounterMode(display=False) as weights:
        query, key, value = q(x), k(x), v(x)
        attended = torch.empty(1, length, heads * dim, device="meta")
        o(attended)
        down(F.silu(gate(x)) * up(x))
    split = lambda t, n: t.view(1, length, n, dim).transpose(1, 2)  # noqa: E731
    repeat = heads // kv_heads
    with FlopCounterMode(display=False) as attention:
        torch.nn.functional.scaled_dot_product_attention(
            split(query, heads),
            split(key, kv_heads).repeat_interleave(repeat, dim=1),
            split(value, kv_heads).repeat_interleave(repeat, dim=1),
            is_causal=True,
        )
    return float(weights.get_total_flops()), float(attention.get_total_flops())


SMALL = {
    **SHAPES,
    "hidden_size": 224,
    "intermediate_size": 784,
    "num_hidden_layers": 3,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
}


@pytest.mark.parametrize("shapes", [SHAPES, SMALL], ids=["sarashina-v2-1b", "small"])
@pytest.mark.parametrize("length", [1, 17, 512])
def test_one_row_costs_what_torch_counts_with_attention_halved_for_causality(shapes, length):
    weights, attention = counted_layer_flops(shapes, length)
    expected = shapes["num_hidden_layers"] * (weights + attention / 2)
    assert model_flops(shapes, np.array([length])) == pytest.approx(expected, rel=1e-12)


def test_rows_add_up_and_attention_grows_with_the_square_of_the_length():
    lengths = np.array([10, 200, 3000])
    total = model_flops(SHAPES, lengths)
    assert total == pytest.approx(sum(model_flops(SHAPES, np.array([n])) for n in lengths), rel=1e-12)
    # One 2,000-token row costs more than two 1,000-token rows: attention is quadratic.
    assert model_flops(SHAPES, np.array([2000])) > model_flops(SHAPES, np.array([1000, 1000]))
    assert model_flops(SHAPES, np.array([], dtype=np.int64)) == 0.0


def test_the_real_shapes_have_about_a_billion_non_embedding_weights():
    weights, _ = counted_layer_flops(SHAPES, 1)
    params = SHAPES["num_hidden_layers"] * weights / 2
    assert 1.0e9 < params < 1.1e9, "the model card's 1.2B less the 0.18B embedding table"


@pytest.mark.parametrize(
    "device_name, key",
    [
        ("NVIDIA H100 80GB HBM3", "H100"),
        ("NVIDIA H100 NVL", "H100 NVL"),
        ("NVIDIA H100 PCIe", "H100 PCIe"),
        ("NVIDIA H200", "H200"),
        ("NVIDIA GH200 480GB", "GH200"),
        ("NVIDIA A100-SXM4-80GB", "A100"),
        ("NVIDIA L40S", "L40S"),  # not the L4's peak: the longest name that fits wins
        ("NVIDIA L4", "L4"),
        ("NVIDIA A10G", "A10G"),
        ("NVIDIA B200", "B200"),
    ],
)
def test_a_gpu_is_matched_by_the_longest_known_name_in_its_torch_name(device_name, key):
    assert peak_flops(device_name) == PEAK_BF16[key]


@pytest.mark.parametrize("device_name", ["", "Tesla T4", "NVIDIA A10", "AMD Instinct MI300X"])
def test_an_unknown_gpu_has_no_peak(device_name):
    assert peak_flops(device_name) is None


def test_every_peak_is_a_dense_bf16_figure_in_flops():
    # Data-sheet figures are TFLOP/s; stored as FLOP/s. Sparse figures would be 2x the dense ones.
    assert all(1e13 < peak < 1e16 for peak in PEAK_BF16.values())
    assert PEAK_BF16["H100 SXM"] > PEAK_BF16["H100 NVL"] > PEAK_BF16["H100 PCIe"] > PEAK_BF16["A100"]


def test_a_gpu_whose_name_only_starts_with_a_known_one_is_not_taken_for_it():
    # The L40 is another card than the L4 (and not listed): no peak, rather than the L4's.
    assert peak_flops("NVIDIA L40") is None
    assert peak_flops("NVIDIA L4") == PEAK_BF16["L4"]
    assert peak_flops("NVIDIA L40S") == PEAK_BF16["L40S"]
    assert peak_flops("NVIDIA A100-SXM4-80GB") == PEAK_BF16["A100"]
