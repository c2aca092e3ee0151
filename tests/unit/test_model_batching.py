import numpy as np
import pytest

from sarashina_batch.model.batching import cut_micro_batches, padding_efficiency


def test_hand_computed_batches():
    lengths = np.array([3, 10, 4, 10, 1])
    batches = cut_micro_batches(lengths, max_tokens=20)
    # Longest first: [10, 10] fills 20; then [4, 3, 1] padded to 4 -> 12 tokens.
    assert [b.rows.tolist() for b in batches] == [[1, 3], [2, 0, 4]]
    assert [b.padded_len for b in batches] == [10, 4]
    assert padding_efficiency(lengths, batches) == pytest.approx(28 / 32)


def test_every_row_once_and_budget_respected_on_skewed_lengths():
    rng = np.random.default_rng(0)
    # Web-like skew: most texts short, a long tail up to the 8192 limit.
    lengths = np.minimum((rng.pareto(1.1, 4096) + 1) * 40, 8192).astype(int)
    batches = cut_micro_batches(lengths, max_tokens=16384)
    rows = np.concatenate([b.rows for b in batches])
    assert sorted(rows.tolist()) == list(range(len(lengths)))
    assert max(b.padded_tokens for b in batches) <= 16384
    padded = sum(b.padded_tokens for b in batches)
    assert padded <= 1.05 * lengths.sum(), f"padding waste {padded / lengths.sum() - 1:.1%}"


@pytest.mark.parametrize("packed", [False, True])
def test_a_row_over_the_budget_goes_alone(packed):
    batches = cut_micro_batches(np.array([3, 50, 4, 60]), max_tokens=10, packed=packed)
    assert [b.rows.tolist() for b in batches] == [[3], [1], [2, 0]]
    assert [b.padded_tokens for b in batches] == ([60, 50, 7] if packed else [60, 50, 8])


def test_empty_window():
    assert cut_micro_batches(np.array([], dtype=int), 100) == []
