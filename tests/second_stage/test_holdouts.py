"""The ranker's extra holdouts: nested in the validation split's training history, answers
never in their own training rows, first stages refit on what each keeps."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from movie_rec.models.ease import EASEConfig
from movie_rec.models.protocol import FitRun
from movie_rec.registry import ITERATIVE, first_stage_models, spec
from movie_rec.second_stage import candidates as rc
from movie_rec.second_stage import holdouts
from tests.conftest import TEST_SPLIT

PAIR = ["user_idx", "item_idx"]


def _splits(tiny_data, count: int = 2, max_users: int | None = None):
    users = tiny_data["valid_answers"]["user_idx"].to_numpy()
    shape = tiny_data["train_matrix_valid"].shape
    return list(holdouts.extra_splits(
        tiny_data["split_train"], users, shape, TEST_SPLIT, count,
        max_users,
    ))  # fmt: skip


def _pairs(frame: pd.DataFrame) -> set[tuple[int, int]]:
    return set(map(tuple, frame[PAIR].to_numpy().tolist()))


def test_no_answer_of_an_extra_split_is_in_its_training_history(tiny_data):
    split_train = tiny_data["split_train"]
    for extra in _splits(tiny_data):
        answers, kept = _pairs(extra.answers), _pairs(extra.history)
        assert answers and not answers & kept
        assert answers | kept == _pairs(split_train)  # nested in the validation split's history
        assert not answers & _pairs(tiny_data["valid_answers"])
        held = extra.matrix[extra.answers["user_idx"], extra.answers["item_idx"]]
        assert np.asarray(held).sum() == 0 and extra.matrix.sum() == len(extra.history)


def test_extra_splits_are_seeded_differ_from_each_other_and_mirror_the_split(tiny_data):
    first, second = _splits(tiny_data)
    assert (first.index, second.index) == (1, 2)
    assert _pairs(first.answers) != _pairs(second.answers)
    again = _splits(tiny_data, count=1)[0]
    pd.testing.assert_frame_equal(again.answers, first.answers)
    kinds = first.answers.groupby("user_idx")["kind"].value_counts().unstack(fill_value=0)
    assert (kinds["last"] == TEST_SPLIT.n_last).all()
    assert (kinds["random"] == TEST_SPLIT.n_random).all()
    # the last answers are the last items of the kept validation history of each user
    last = first.answers[first.answers["kind"] == "last"]
    tail = tiny_data["split_train"].groupby("user_idx").tail(TEST_SPLIT.n_last)
    assert _pairs(last) == _pairs(tail[tail["user_idx"].isin(last["user_idx"])])


def test_extra_splits_hold_out_for_a_seeded_sample_of_at_most_max_users(tiny_data):
    validated = set(tiny_data["valid_answers"]["user_idx"])
    for extra in _splits(tiny_data, max_users=5):
        assert len(extra.users) <= 5 and set(extra.users) <= validated


def test_refit_candidates_come_from_the_split_s_history(tiny_data):
    """The refit model has not seen the split's answers, so it can rank them; the validation
    fit saw them (they are in split_train) and never could."""
    extra = _splits(tiny_data, count=1)[0]
    candidates = holdouts.refit_candidates(
        extra, {"ease": EASEConfig()}, FitRun(), k=30, batch_size=64
    )["ease"]
    assert set(candidates["user_idx"]) == set(extra.users)
    assert not _pairs(candidates) & _pairs(extra.history)  # unseen in the split's history
    labels = rc.label_pairs(candidates, extra.answers)
    assert (labels > 0).sum() > 0


def test_only_closed_form_first_stages_are_refit():
    refit = holdouts.refittable_models()
    assert "ease" in refit and "markov" in refit
    assert set(refit) <= set(first_stage_models())
    assert not [name for name in refit if spec(name).can(ITERATIVE)]


@pytest.mark.parametrize("count", [0, 3])
def test_the_count_of_extra_splits_is_honoured(tiny_data, count):
    assert [extra.index for extra in _splits(tiny_data, count=count)] == list(range(1, count + 1))


def test_a_split_no_user_is_long_enough_for_holds_out_nothing(tiny_data):
    users = tiny_data["valid_answers"]["user_idx"].to_numpy()
    split = replace(TEST_SPLIT, min_history=10_000)
    (extra,) = holdouts.extra_splits(
        tiny_data["split_train"], users, tiny_data["train_matrix_valid"].shape, split, 1, None
    )
    assert extra.answers.empty and len(extra.users) == 0
    assert len(extra.history) == len(tiny_data["split_train"])
