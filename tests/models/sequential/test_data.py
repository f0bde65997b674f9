import numpy as np
import pandas as pd
import torch

from movie_rec.models.sequences import user_sequences
from movie_rec.models.sequential.data import (
    IGNORE,
    PrefixExamples,
    WindowExamples,
    batch_order,
    left_padded,
    mask_id,
    next_items,
    pad_id,
    sample_negatives,
    trim_padding,
)

CPU = torch.device("cpu")


def hand_sequences():
    histories = {0: [1, 2, 3, 4, 5, 6, 7], 1: [8, 9], 2: [4]}
    rows = [(u, item, t) for u, items in histories.items() for t, item in enumerate(items)]
    return user_sequences(pd.DataFrame(rows, columns=["user_idx", "item_idx", "time"]), 4)


def test_pad_and_mask_are_extra_rows():
    assert pad_id(10) == 10 and mask_id(10) == 11


def test_left_padded_keeps_the_last_items():
    rows = left_padded(hand_sequences(), max_len=4, pad=99)
    np.testing.assert_array_equal(
        rows, [[4, 5, 6, 7], [99, 99, 8, 9], [99, 99, 99, 4], [99, 99, 99, 99]]
    )


def test_windows_make_every_item_but_the_first_a_target_once():
    sequences = hand_sequences()
    windows = WindowExamples.build(sequences, max_len=3, pad=99, device=CPU).windows
    _, targets = next_items(windows, 99)
    targets = targets[targets != IGNORE].tolist()
    assert sorted(targets) == sorted([2, 3, 4, 5, 6, 7, 9])
    assert windows.shape[1] == 4
    assert not (windows == 4).all(1).any()  # user 2 has one item: no window


def test_next_items_ignore_targets_after_padding():
    inputs, targets = next_items(torch.tensor([[9, 9, 1, 2, 3]]), pad=9)
    assert inputs.tolist() == [[9, 9, 1, 2]]
    assert targets[..., 0].tolist() == [[IGNORE, IGNORE, 2, 3]]


def test_next_items_over_a_horizon_are_the_items_that_follow():
    _, targets = next_items(torch.tensor([[9, 1, 2, 3, 4]]), pad=9, horizon=3)
    x = IGNORE
    assert targets.tolist() == [[[x, x, x], [2, 3, 4], [3, 4, x], [4, x, x]]]


def test_trim_padding_drops_only_all_padding_columns():
    rows = torch.tensor([[9, 9, 1], [9, 2, 3]])
    assert trim_padding(rows, 9).tolist() == [[9, 1], [2, 3]]


def test_prefix_examples_give_each_position_its_history():
    examples = PrefixExamples.build(hand_sequences(), max_len=3, pad=99, device=CPU)
    assert len(examples) == 7  # 6 from user 0, 1 from user 1
    rows, targets = examples.gather(torch.arange(len(examples)))
    by_target = dict(zip(targets.tolist(), rows.tolist(), strict=True))
    assert by_target[2][-1] == 1 and by_target[2][:-1] == [99] * (rows.shape[1] - 1)
    assert by_target[7] == [4, 5, 6]
    assert by_target[9][-1] == 8


def test_batch_order_is_a_seeded_permutation():
    lengths = np.random.default_rng(0).integers(1, 50, size=1000)
    first = np.concatenate(list(batch_order(lengths, 64, seed=1, pass_index=3)))
    again = np.concatenate(list(batch_order(lengths, 64, seed=1, pass_index=3)))
    other = np.concatenate(list(batch_order(lengths, 64, seed=1, pass_index=4)))
    assert sorted(first.tolist()) == list(range(1000))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_negatives_are_real_items():
    generator = torch.Generator().manual_seed(0)
    drawn = sample_negatives((20_000,), 7, generator, CPU)
    assert drawn.min() >= 0 and drawn.max() == 6


def test_one_pass_of_windows_targets_every_later_item_of_long_histories_once():
    lengths = [57, 1, 9, 8, 17, 2, 33]
    rows = [(u, 0, t) for u, n in enumerate(lengths) for t in range(n)]
    frame = pd.DataFrame(rows, columns=["user_idx", "item_idx", "time"])
    frame["item_idx"] = np.arange(len(frame))  # item id = flat position: every target is unique
    sequences = user_sequences(frame, len(lengths))
    pad = len(frame)
    examples = WindowExamples.build(sequences, max_len=8, pad=pad, device=CPU)
    targets = []
    for batch in examples.batches(batch_size=3, seed=0)(1):
        assert (batch[:, 0] != pad).any()  # no column of padding only is computed
        _, after = next_items(batch, pad)
        targets += after[..., 0][after[..., 0] != IGNORE].tolist()
    firsts = set(sequences.offsets[:-1].tolist())
    assert sorted(targets) == [i for i in range(len(frame)) if i not in firsts]
