"""The LightGBM second stage: folds, out-of-fold scores, training, ranking, importance."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from movie_rec.evaluation import check_candidates, recall_at_k
from movie_rec.parameters import TabularSettings
from movie_rec.second_stage import ranker

FAST = replace(
    TabularSettings().ranker(seed=3),
    lgbm={"learning_rate": 0.1, "num_leaves": 7, "min_data_in_leaf": 5, "min_data_per_group": 5},
    max_rounds=30,
    early_stopping_share=0.1,
    early_stopping_rounds=5,
    max_train_users=None,
    num_threads=1,
    kind_gain={"last": 1.0, "random": 1.0},
    objective="lambdarank",
    bags=1,
    negative_share=1.0,
)


def _train(features, labels, config, rounds=None, held=None, extra=None):
    return ranker.fit_ranker(
        ranker.training_rows(features, labels, config, held, extra), config, rounds
    )


def _score(booster, rounds, rows: pd.DataFrame) -> np.ndarray:
    return ranker.FoldModel(booster, rounds, np.empty(0)).predict(rows)


def test_assign_folds_is_seeded_balanced_and_covers_every_user():
    users = np.repeat(np.arange(23), 3)
    folds = ranker.assign_folds(users, 5, seed=1)
    assert sorted(folds.index) == list(range(23))
    assert folds.value_counts().tolist() == [5, 5, 5, 4, 4]
    pd.testing.assert_series_equal(folds, ranker.assign_folds(users, 5, seed=1))
    assert not folds.equals(ranker.assign_folds(users, 5, seed=2))


def _planted(
    n_users: int = 60, per_user: int = 12, seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray]:
    """Ranking rows where the label follows feature ``signal``; ``noise`` carries nothing."""
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), per_user)
    signal = rng.random(len(users))
    labels = (signal > 0.8).astype(np.int8)
    features = pd.DataFrame(
        {
            "user_idx": users,
            "item_idx": np.tile(np.arange(per_user), n_users),
            "signal": signal,
            "noise": rng.random(len(users)),
            "director": rng.integers(0, 3, len(users)),
            "writer": rng.integers(0, 3, len(users)),
        }
    )
    return features, labels


def test_every_out_of_fold_score_comes_from_a_model_that_never_saw_the_user():
    features, labels = _planted()
    oof = ranker.out_of_fold_scores(features, labels, 4, FAST)

    users = np.unique(features["user_idx"])
    (folds,), (models,) = oof.folds, oof.models
    assert sorted(folds.index) == users.tolist()
    for fold, model in enumerate(models):
        scored_here = folds.index[folds == fold]
        assert len(scored_here) > 0
        assert np.intersect1d(model.trained_on, scored_here).size == 0
        assert set(model.trained_on) | set(scored_here) == set(users)
    assert np.isfinite(oof.scores).all()
    # the scores of fold 0's users are exactly those of a model trained without them
    held = features["user_idx"].isin(folds.index[folds == 0]).to_numpy()
    without, rounds = _train(features, labels, FAST, held=held)
    np.testing.assert_allclose(oof.scores[held], _score(without, rounds, features.loc[held]))


def test_bags_average_seeded_repeats_and_every_fold_model_scores_new_rows():
    features, labels = _planted()
    bagged = ranker.out_of_fold_scores(features, labels, 3, replace(FAST, bags=2))
    first = ranker.out_of_fold_scores(features, labels, 3, FAST)
    second = ranker.out_of_fold_scores(features, labels, 3, replace(FAST, seed=FAST.seed + 1))

    assert not first.folds[0].equals(second.folds[0])  # each bag deals its own folds
    np.testing.assert_allclose(bagged.scores, (first.scores + second.scores) / 2)
    assert bagged.best_iterations == first.best_iterations + second.best_iterations
    new_rows = _planted(n_users=5, seed=9)[0]
    one_a_bag = [bag.models[0][0].predict(new_rows) for bag in (first, second)]
    final = ranker.mean_prediction(bagged.final_models(), new_rows)
    np.testing.assert_allclose(final, np.mean(one_a_bag, axis=0))
    assert len(bagged.final_models()) == 2


def test_binary_objective_learns_the_planted_signal_with_kind_weights():
    features, labels = _planted()
    binary = replace(FAST, objective="binary")
    assert binary.params()["objective"] == "binary"
    assert "label_gain" not in binary.params()
    oof = ranker.out_of_fold_scores(features, labels, 3, binary)
    answers = features.loc[labels == 1, ["user_idx", "item_idx"]].assign(kind="random")
    ranked = ranker.rank_candidates(features, oof.scores, k=3)
    by_noise = ranker.rank_candidates(features, features["noise"].to_numpy(), k=3)
    assert recall_at_k(ranked, answers)["recall@10"] > recall_at_k(by_noise, answers)["recall@10"]


def test_config_rejects_unknown_objectives_and_empty_bags():
    with pytest.raises(ValueError, match="objective"):
        replace(FAST, objective="xendcg")
    with pytest.raises(ValueError, match="bags"):
        replace(FAST, bags=0)


def test_ranker_learns_a_planted_signal_and_is_deterministic():
    features, labels = _planted()
    oof = ranker.out_of_fold_scores(features, labels, 3, FAST)
    candidates = ranker.rank_candidates(features, oof.scores, k=3)
    answers = features.loc[labels == 1, ["user_idx", "item_idx"]].assign(kind="random")
    by_noise = ranker.rank_candidates(features, features["noise"].to_numpy(), k=3)

    assert (
        recall_at_k(candidates, answers)["recall@10"] > recall_at_k(by_noise, answers)["recall@10"]
    )
    np.testing.assert_array_equal(
        oof.scores, ranker.out_of_fold_scores(features, labels, 3, FAST).scores
    )
    booster, rounds = _train(features, labels, FAST, rounds=7)
    assert rounds == 7 and booster.current_iteration() == 7
    importance = ranker.feature_importance([booster])
    assert importance["feature"].iloc[0] == "signal"


def test_fit_ranker_ignores_users_without_any_positive():
    features, labels = _planted()
    no_positive_users = features["user_idx"] >= 30
    cleared = np.where(no_positive_users, 0, labels).astype(np.int8)
    rows = ranker.training_rows(features, cleared, FAST)
    assert rows.features["user_idx"].max() < 30 and len(rows.labels) == len(rows.features)
    booster, _ = ranker.fit_ranker(rows, FAST, rounds=5)
    reference, _ = _train(features[~no_positive_users], cleared[~no_positive_users], FAST, 5)
    sample = features.iloc[:50]
    np.testing.assert_array_equal(_score(booster, 5, sample), _score(reference, 5, sample))


def test_rank_candidates_orders_by_score_breaks_ties_by_item_and_keeps_k():
    pairs = pd.DataFrame({"user_idx": [1, 1, 1, 0, 0], "item_idx": [5, 3, 9, 2, 1]})
    ranked = ranker.rank_candidates(pairs, np.array([0.5, 0.5, 0.9, 0.1, 0.2]), k=2)
    assert ranked[["user_idx", "item_idx", "rank"]].values.tolist() == [
        [0, 1, 1], [0, 2, 2], [1, 9, 1], [1, 3, 2],
    ]  # fmt: skip
    check_candidates(ranked, sp.csr_matrix((2, 10), dtype=np.float32), k=2)


def test_user_sample_keeps_whole_groups_of_a_seeded_user_sample():
    features, _ = _planted(n_users=20, per_user=4)
    labels = np.ones(len(features), dtype=np.int8)
    sampled = replace(FAST, max_train_users=5, seed=0)
    rows = ranker.training_rows(features, labels, sampled)

    assert rows.features["user_idx"].nunique() == 5
    assert rows.features.groupby("user_idx").size().eq(4).all()
    picked = features["user_idx"].isin(rows.features["user_idx"]).to_numpy()
    pd.testing.assert_frame_equal(rows.features, features[picked].reset_index(drop=True))
    pd.testing.assert_frame_equal(
        rows.features, ranker.training_rows(features, labels, sampled).features
    )
    unchanged = ranker.training_rows(features, labels, replace(sampled, max_train_users=None))
    assert len(unchanged.features) == len(features)


def _share_of_users_whose_random_answer_comes_first(objective: str) -> dict[float, float]:
    """Per user, the row with the largest `signal` is a `last` answer (grade 1), the one with
    the largest `noise` a `random` answer (grade 2); the kind gains decide which comes first."""
    features, _ = _planted()
    by_user = features.groupby("user_idx")
    grades = np.zeros(len(features), dtype=np.int8)
    grades[by_user["noise"].idxmax().to_numpy()] = 2
    grades[by_user["signal"].idxmax().to_numpy()] = 1
    share_random_first = {}
    for gain in (0.1, 10.0):
        tilted = replace(FAST, kind_gain={"last": 1.0, "random": gain}, objective=objective)
        booster, _ = _train(features, grades, tilted, rounds=20)
        scores = _score(booster, 20, features)
        first = pd.Series(scores).groupby(features["user_idx"].to_numpy()).idxmax().to_numpy()
        share_random_first[gain] = (grades[first] == 2).mean()
    return share_random_first


def test_kind_gain_is_the_label_gain_of_each_kinds_grade_and_steers_the_ranker():
    assert replace(FAST, kind_gain={"last": 1.0, "random": 3.0}).label_gain() == [0, 1, 3]
    share_random_first = _share_of_users_whose_random_answer_comes_first("lambdarank")
    assert share_random_first[10.0] > 0.8
    assert share_random_first[0.1] < 0.2


def test_kind_gain_weighs_the_answer_rows_of_the_binary_objective():
    share_random_first = _share_of_users_whose_random_answer_comes_first("binary")
    assert share_random_first[10.0] - share_random_first[0.1] >= 0.5


def test_a_user_s_rows_of_each_split_are_separate_queries():
    rows = pd.DataFrame({"user_idx": [3, 3, 5, 3, 3, 5], "split": [np.nan] * 3 + [1, 1, 2]})
    query = ranker.query_ids(rows)
    assert len(set(query[:2])) == 1 and len(set(query)) == 4
    assert ranker._group_sizes(query).tolist() == [2, 1, 2, 1]
    plain = rows.drop(columns="split")
    assert ranker.query_ids(plain).tolist() == rows["user_idx"].tolist()


def _extra_rows(features: pd.DataFrame, labels: np.ndarray, split: int) -> ranker.LabelledRows:
    return ranker.LabelledRows(features.assign(split=split), labels)


def test_extra_rows_train_only_the_fold_models_of_other_users():
    features, labels = _planted(n_users=40)
    extra_features, extra_labels = _planted(n_users=40, seed=1)
    extra = _extra_rows(extra_features, extra_labels, 1)
    held = features["user_idx"].isin([0, 1, 2]).to_numpy()
    every_user_answers = np.ones_like(labels)
    chosen = ranker.training_rows(
        features, every_user_answers, FAST, held, _extra_rows(extra_features, every_user_answers, 1)
    )
    rows, y = chosen.features, chosen.labels
    assert not rows["user_idx"].isin([0, 1, 2]).any()
    assert len(rows) == (~held).sum() * 2 and len(y) == len(rows)
    assert (rows["split"].fillna(0) == 1).sum() == (~held).sum()
    pd.testing.assert_frame_equal(
        rows.iloc[: (~held).sum()].drop(columns="split"), features[~held].reset_index(drop=True)
    )

    oof = ranker.out_of_fold_scores(features, labels, 4, FAST, extra)
    plain = ranker.out_of_fold_scores(features, labels, 4, FAST)
    assert len(oof.scores) == len(features)  # extra rows are never scored
    assert not np.allclose(oof.scores, plain.scores)  # but they trained the models
    (folds,), (models,) = oof.folds, oof.models
    for fold, model in enumerate(models):
        assert set(model.trained_on).isdisjoint(folds[folds == fold].index)


def test_negative_sampling_keeps_every_answer_and_weighs_the_kept_negatives_back():
    features, labels = _planted(n_users=50)
    config = replace(FAST, objective="binary", negative_share=0.25, seed=4)
    chosen = ranker.training_rows(features, labels, config)
    rows, y = chosen.features, chosen.labels
    assert (y > 0).sum() == (labels > 0).sum()  # every answer stays
    answering = pd.Series(labels).groupby(features["user_idx"]).transform("max").to_numpy() > 0
    candidates = ((labels == 0) & answering).sum()  # users without an answer never train
    assert 0.2 * candidates < (y == 0).sum() < 0.3 * candidates
    pd.testing.assert_frame_equal(rows, ranker.training_rows(features, labels, config).features)
    weight = ranker._dataset(rows, y, config).get_weight()
    np.testing.assert_allclose(weight[y == 0], 4.0)
    np.testing.assert_allclose(weight[y > 0], 1.0)
    with pytest.raises(ValueError, match="binary"):
        replace(FAST, objective="lambdarank", negative_share=0.5)


def test_chunked_mean_prediction_equals_each_model_on_the_whole_frame(monkeypatch):
    features, labels = _planted()
    models = [
        ranker.FoldModel(*_train(features, labels, replace(FAST, seed=seed), rounds=6), np.empty(0))
        for seed in (1, 2)
    ]
    whole = [m.booster.predict(features[["signal", "noise", "director", "writer"]]) for m in models]
    monkeypatch.setattr(ranker, "PREDICT_CHUNK_ROWS", 7)
    np.testing.assert_allclose(ranker.mean_prediction(models, features), np.mean(whole, axis=0))
    rows = np.array([3, 100, 5])
    np.testing.assert_allclose(
        ranker.mean_prediction(models, features, rows), np.mean(whole, axis=0)[rows]
    )


def test_feature_matrix_is_float32_in_feature_order():
    features, _ = _planted(n_users=3)
    block = ranker.feature_matrix(features)
    assert block.dtype == np.float32
    assert block.shape == (len(features), 4)
    np.testing.assert_array_equal(block[:, 2], features["director"].to_numpy())
