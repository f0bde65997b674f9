"""Fusion methods, weight tuning, popularity completion and the submission validator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from movie_rec import fusion, fusion_tuning, splits, submission
from movie_rec.evaluation import check_candidates, per_user_recall, recall_at_k, top_k_unseen
from movie_rec.models.baselines import ItemCooccurrence
from movie_rec.models.markov import Markov, MarkovConfig
from movie_rec.models.protocol import TrainingData, fitted
from tests.conftest import popular_model


def ranked_lists(lists: dict[int, list[int]]) -> pd.DataFrame:
    """Candidates from ``{user: [items best first]}``."""
    rows = [
        (user, item, 1.0 / rank, rank)
        for user, items in lists.items()
        for rank, item in enumerate(items, start=1)
    ]
    return pd.DataFrame(rows, columns=["user_idx", "item_idx", "score", "rank"])


def top_items(recommendations: pd.DataFrame, user: int) -> list[int]:
    rows = recommendations[recommendations["user_idx"] == user].sort_values("rank")
    return rows["item_idx"].tolist()


@pytest.fixture(scope="module")
def baseline_candidates(tiny_data) -> dict[str, pd.DataFrame]:
    matrix = tiny_data["train_matrix_valid"]
    last_item = fitted(
        Markov(MarkovConfig(k=1, lags=1)), TrainingData(matrix, tiny_data["split_train"])
    )
    return {
        "ease": top_k_unseen(ItemCooccurrence(matrix).score, matrix, 30),
        "sasrec": top_k_unseen(last_item.score, matrix, 30),
        "multivae": top_k_unseen(popular_model(matrix).score, matrix, 30),
    }


def test_priority_reproduces_a_hand_worked_example():
    candidates = {
        "a": ranked_lists({0: [1, 2, 3, 4, 5]}),
        "b": ranked_lists({0: [6, 3, 7, 1, 8]}),
        "c": ranked_lists({0: [3, 9, 10, 11, 12]}),
    }
    fused = fusion.priority_fusion(candidates, order=["b", "a", "c"], min_votes=2, k=6)
    # 3 has three votes; 1 has two (best rank 1); then b's list: 6, 7, 8; then a's: 2.
    assert top_items(fused, 0) == [3, 1, 6, 7, 8, 2]
    assert fused["rank"].tolist() == [1, 2, 3, 4, 5, 6]


def test_priority_counts_votes_only_within_the_vote_depth():
    candidates = {
        "a": ranked_lists({0: [1, 2, 3]}),
        "b": ranked_lists({0: [4, 5, 1]}),
    }
    shallow = fusion.priority_fusion(candidates, ["a", "b"], min_votes=2, vote_depth=2, k=4)
    deep = fusion.priority_fusion(candidates, ["b", "a"], min_votes=2, vote_depth=3, k=4)
    assert top_items(shallow, 0) == [1, 2, 3, 4]
    assert top_items(deep, 0) == [1, 4, 5, 2]


def test_weighted_rank_with_one_model_at_weight_one_is_that_models_top_10(baseline_candidates):
    rank_fusion = fusion.RankFusion(weights={"ease": 1.0, "sasrec": 0.0, "multivae": 0.0})
    fused = fusion.weighted_rank(baseline_candidates, rank_fusion)
    ease = baseline_candidates["ease"]
    expected = ease[ease["rank"] <= 10].sort_values(["user_idx", "rank"])
    got = fused.sort_values(["user_idx", "rank"])
    assert got[["user_idx", "item_idx", "rank"]].to_numpy().tolist() == (
        expected[["user_idx", "item_idx", "rank"]].to_numpy().tolist()
    )


def test_weighted_rank_reproduces_a_hand_worked_example():
    candidates = {"a": ranked_lists({0: [1, 2, 3]}), "b": ranked_lists({0: [3, 4, 1]})}
    rank_fusion = fusion.RankFusion(
        weights={"a": 1.0, "b": 0.5}, cutoff=3, head=2, tail_weight=0.5, rank_offset=0.0
    )
    fused = fusion.weighted_rank(candidates, rank_fusion, k=3)
    # 1: 1/1 + .5·.5/3 = 1.083; 3: .5/3 + .5·1/1 = .667; 2: 1/2 = .5; 4: .5/2 = .25
    assert top_items(fused, 0) == [1, 3, 2]
    assert fused["score"].tolist() == pytest.approx([1 + 0.25 / 3, 0.5 / 3 + 0.5, 0.5])


def test_rank_value_applies_the_tail_weight_and_the_cutoff():
    rank_fusion = fusion.RankFusion(weights={}, cutoff=15, head=10, tail_weight=0.3, rank_offset=0)
    values = rank_fusion.rank_value(np.array([1, 10, 11, 15, 16]))
    assert values == pytest.approx([1.0, 0.1, 0.3 / 11, 0.3 / 15, 0.0])


def test_fused_lists_are_valid_candidates(tiny_data, baseline_candidates):
    rank_fusion = fusion.RankFusion(weights={"ease": 0.7, "sasrec": 0.4, "multivae": 0.1})
    for fused in (
        fusion.weighted_rank(baseline_candidates, rank_fusion),
        fusion.priority_fusion(baseline_candidates, ["sasrec", "ease", "multivae"]),
    ):
        check_candidates(fused, tiny_data["train_matrix_valid"], k=10)
        assert fused["user_idx"].nunique() == tiny_data["train_matrix_valid"].shape[0]


def test_usable_candidates_skips_missing_and_empty_models(baseline_candidates):
    candidates = {**baseline_candidates, "gru4rec": fusion.empty_recommendations()}
    usable = fusion.usable_candidates(candidates, ["gru4rec", "sasrec", "srgnn", "ease"])
    assert list(usable) == ["sasrec", "ease"]


def test_tuning_is_seeded_and_never_below_the_best_single_model(tiny_data, baseline_candidates):
    answers = tiny_data["valid_answers"]
    settings = {"head": 10, "max_cutoff": 20, "n_trials": 12}
    outcome = fusion_tuning.tune_weighted_rank(baseline_candidates, answers, settings, seed=1)
    again = fusion_tuning.tune_weighted_rank(baseline_candidates, answers, settings, seed=1)
    rank_fusion = outcome.fusion
    assert rank_fusion == again.fusion and outcome.choice == again.choice
    assert len(outcome.history) == 12
    tuned = recall_at_k(fusion.weighted_rank(baseline_candidates, rank_fusion), answers)[
        "recall@10"
    ]
    singles = [recall_at_k(frame, answers)["recall@10"] for frame in baseline_candidates.values()]
    assert tuned >= max(singles) - 1e-12
    assert 10 <= rank_fusion.cutoff <= 20


def test_split_users_is_a_seeded_partition_of_the_validated_users(tiny_data):
    answers = tiny_data["valid_answers"]
    tune, holdout = fusion_tuning.split_users(answers, seed=5)
    again, _ = fusion_tuning.split_users(answers, seed=5)
    other, _ = fusion_tuning.split_users(answers, seed=6)
    assert np.array_equal(tune, again)
    assert not np.array_equal(tune, other)
    assert len(np.intersect1d(tune, holdout)) == 0
    assert np.array_equal(np.union1d(tune, holdout), np.unique(answers["user_idx"]))
    assert abs(len(tune) - len(holdout)) <= 1


def test_complete_with_popular_gives_everyone_ten_unseen_distinct_items():
    seen = np.zeros((4, 12), dtype=np.float32)
    seen[[0, 2, 3], 0] = 1  # item 0 is the most popular
    seen[1, 11] = 1
    seen[2, :11] = 1  # user 2 has seen every item but 11
    seen = sp.csr_matrix(seen)
    recommendations = ranked_lists({0: [5, 3], 1: list(range(10))})
    completed = submission.complete_with_popular(recommendations, seen, k=10)
    check_candidates(completed, seen, k=10)
    assert top_items(completed, 0)[:2] == [5, 3]
    assert top_items(completed, 1) == list(range(10))
    assert top_items(completed, 2) == [11]  # the only unseen item
    for user in (0, 3):
        items = top_items(completed, user)
        assert len(set(items)) == 10
        assert not seen[user, items].toarray().any()


@pytest.fixture
def submission_parts():
    user_map = pd.DataFrame({"user_idx": [0, 1], "user": [11, 22]})
    item_map = pd.DataFrame({"item_idx": np.arange(12), "item": np.arange(12) + 100})
    seen = sp.csr_matrix((np.ones(2), ([0, 1], [0, 11])), shape=(2, 12))
    recommendations = ranked_lists({0: list(range(1, 11)), 1: list(range(10))})
    table = submission.build_submission(recommendations, user_map, item_map)
    return table, user_map, item_map, seen


def test_build_submission_maps_back_to_raw_ids_best_first(submission_parts):
    table, *_ = submission_parts
    assert list(table.columns) == ["user", "item"]
    assert table[table["user"] == 22]["item"].tolist() == list(range(100, 110))


def test_the_validator_accepts_a_valid_submission(submission_parts):
    submission.validate_submission(*submission_parts)


def replace_item(frame: pd.DataFrame, user: int, old: int, new: int) -> pd.DataFrame:
    changed = (frame["user"] == user) & (frame["item"] == old)
    return frame.assign(item=frame["item"].where(~changed, new))


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda frame: frame[frame["user"] != 22], "no recommendations"),
        (lambda frame: frame.iloc[1:], "exactly 10"),
        (lambda frame: pd.concat([frame.iloc[:-1], frame.iloc[[0]]]), "repeated"),
        (lambda frame: replace_item(frame, 11, 101, 100), "already seen"),
        (lambda frame: replace_item(frame, 11, 101, 999), "unknown items"),
        (lambda frame: frame.assign(user=frame["user"].replace({22: 33})), "unknown users"),
        (lambda frame: frame.rename(columns={"item": "movie"}), "columns"),
    ],
    ids=["missing user", "wrong count", "duplicate", "seen item", "unknown item", "stray user",
         "header"],
)  # fmt: skip
def test_the_validator_rejects_a_broken_submission(submission_parts, breakage, message):
    table, user_map, item_map, seen = submission_parts
    with pytest.raises(submission.SubmissionError, match=message):
        submission.validate_submission(
            breakage(table).reset_index(drop=True), user_map, item_map, seen
        )


def reference_priority(candidates, order, min_votes, vote_depth, k):
    """The priority rule written out user by user, for comparison."""
    result = {}
    for user in sorted(set().union(*(set(frame["user_idx"]) for frame in candidates.values()))):
        lists = {name: top_items(candidates[name], user) for name in order if name in candidates}
        votes: dict[int, list[int]] = {}
        for items in lists.values():
            for rank, item in enumerate(items[:vote_depth], start=1):
                votes.setdefault(item, []).append(rank)
        agreed = sorted(
            (item for item, ranks in votes.items() if len(ranks) >= min_votes),
            key=lambda item: (-len(votes[item]), min(votes[item]), item),
        )
        chosen = agreed[:k]
        for items in lists.values():
            chosen += [item for item in items if item not in chosen][: k - len(chosen)]
        result[user] = chosen
    return result


def test_priority_matches_the_rule_written_out_user_by_user(baseline_candidates):
    order = ["sasrec", "multivae", "ease"]
    fused = fusion.priority_fusion(baseline_candidates, order, min_votes=2, vote_depth=10)
    expected = reference_priority(baseline_candidates, order, 2, 10, 10)
    assert {user: top_items(fused, user) for user in expected} == expected


def _complementary_models(n_users: int = 40):
    """Two models that each find the one answer of a different half of the users."""
    answers = pd.DataFrame(
        [(u, 100 + u, "last") for u in range(n_users)], columns=["user_idx", "item_idx", "kind"]
    )
    half = n_users // 2
    first = ranked_lists({u: [100 + u] if u < half else [1] for u in range(n_users)})
    second = ranked_lists({u: [100 + u] if u >= half else [2] for u in range(n_users)})
    return {"first": first, "second": second}, answers


def test_paired_difference_is_the_mean_and_standard_error_of_per_user_gains():
    ours = pd.Series([1.0, 0.0, 1.0, 1.0], index=[3, 1, 2, 0])
    theirs = pd.Series([0.0, 0.0, 1.0, 0.0], index=[0, 1, 2, 3])
    gain, error = fusion_tuning.paired_difference(ours, theirs)
    difference = np.array([1.0, 0.0, 0.0, 1.0])  # matched by user, not by position
    assert gain == pytest.approx(difference.mean())
    assert error == pytest.approx(difference.std(ddof=1) / 2)


def test_tuned_weights_are_kept_only_for_a_gain_beyond_the_noise():
    models, answers = _complementary_models()
    settings = {"head": 10, "max_cutoff": 20, "n_trials": 12}
    tuned = fusion_tuning.tune_weighted_rank(models, answers, {**settings, "min_gain_se": 1.0}, 1)
    assert tuned.choice.chosen == fusion_tuning.FUSION
    assert min(tuned.fusion.weights.values()) > 0  # both models take part: every user is found
    assert recall_at_k(fusion.weighted_rank(models, tuned.fusion), answers)["recall@10"] == 1.0
    strict = fusion_tuning.tune_weighted_rank(models, answers, {**settings, "min_gain_se": 1e6}, 1)
    assert strict.choice.chosen == "first"  # the best first stage, the simplest list
    assert strict.fusion.weights == {"first": 1.0, "second": 0.0}


def test_guard_folds_are_a_seeded_partition_of_the_users():
    users = np.arange(23)
    folds = fusion_tuning.guard_folds(users, 5, seed=3)
    assert sorted(np.concatenate(folds).tolist()) == users.tolist()
    assert {len(fold) for fold in folds} == {4, 5}
    again = fusion_tuning.guard_folds(users, 5, seed=3)
    other = fusion_tuning.guard_folds(users, 5, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(folds, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(folds, other, strict=True))


def test_out_of_fold_lists_come_from_searches_that_never_saw_the_user():
    answers = pd.DataFrame(
        [(u, 100 + u, "last") for u in range(40)], columns=["user_idx", "item_idx", "kind"]
    )
    unseen = set(fusion_tuning.guard_folds(answers["user_idx"].to_numpy(), 4, seed=1)[0].tolist())
    # "narrow" finds the answers of one fold's users only, "broad" everyone else's
    models = {
        "broad": ranked_lists({u: [1] if u in unseen else [100 + u] for u in range(40)}),
        "narrow": ranked_lists({u: [100 + u] if u in unseen else [2] for u in range(40)}),
    }
    settings = {"head": 10, "max_cutoff": 20, "n_trials": 12}
    stacked = fusion.stack_ranks(models, 20)
    tuned = fusion_tuning.out_of_fold_fusions(stacked, answers, settings, seed=1, folds=4)
    recall = per_user_recall(tuned, answers).set_index("user_idx")["recall"]
    # the search for that fold saw no user that "narrow" helps, so it left "narrow" out;
    # the searches for the other folds saw those users and fused both models
    assert (recall[sorted(unseen)] == 0).all()
    assert (recall.drop(sorted(unseen)) == 1).all()
    # tuned on all the users at once, both models take part and every user is found
    in_sample, _ = fusion_tuning.search_fusion(stacked, answers, settings, seed=1)
    assert recall_at_k(fusion.fuse_stacked(stacked, in_sample), answers)["recall@10"] == 1.0


def _lists_finding(n_users: int, found: set[int]) -> pd.DataFrame:
    """A list that holds the answer (item 100 + u) of the users in ``found`` only."""
    return ranked_lists({u: [100 + u] if u in found else [1] for u in range(n_users)})


def _random_answers(n_users: int) -> pd.DataFrame:
    return pd.DataFrame(
        [(u, 100 + u, "random") for u in range(n_users)], columns=["user_idx", "item_idx", "kind"]
    )


def test_the_simplest_list_is_chosen_unless_the_best_wins_beyond_the_noise():
    answers = _random_answers(40)
    ease = _lists_finding(40, set(range(20)))
    clear_win = _lists_finding(40, set(range(30)))  # 10 more users found: far beyond the noise
    narrow_win = _lists_finding(40, set(range(21)))  # one more user: a gain of one SE
    clear = fusion_tuning.choose_list({"ease": ease, "lgbm_ranker": clear_win}, answers, 1.0)
    assert clear.chosen == "lgbm_ranker" and clear.runner_up == "ease"
    assert clear.gain == pytest.approx(0.25)
    narrow = fusion_tuning.choose_list({"ease": ease, "lgbm_ranker": narrow_win}, answers, 1.5)
    assert narrow.chosen == "ease" and narrow.runner_up == "lgbm_ranker"
    assert narrow.gain == pytest.approx(-0.025)  # kept although it scores lower
    assert narrow.scores == {"ease": 0.5, "lgbm_ranker": 0.525}


def test_a_fusion_that_loses_out_of_fold_is_never_chosen():
    """The failure the final choice exists for: the ranker is the best list out of fold, the
    fusion beats the first stage beyond the noise but not the ranker, and the ranker does not
    beat the first stage beyond the noise. The submission is the ranker's list, never the
    fusion's, whatever the threshold."""
    answers = _random_answers(60)
    contenders = {
        "ease": _lists_finding(60, set(range(0, 30))),
        "lgbm_ranker": _lists_finding(60, set(range(0, 30)) | {31, 32, 33, 35, 36, 37}),
        fusion_tuning.FUSION: _lists_finding(60, set(range(0, 30)) | {31, 32, 33, 35, 36}),
    }
    for min_gain_se in (0.0, 0.5, 1.0, 2.0, 3.0, 1e6):
        choice = fusion_tuning.choose_list(contenders, answers, min_gain_se)
        assert choice.chosen != fusion_tuning.FUSION
    # with a threshold the ranker's gain over EASE clears, the ranker; above it, EASE
    assert fusion_tuning.choose_list(contenders, answers, 1.0).chosen == "lgbm_ranker"
    assert fusion_tuning.choose_list(contenders, answers, 3.0).chosen == "ease"


def test_a_fusion_chosen_in_tuning_is_judged_by_its_cross_fitted_lists():
    models, answers = _complementary_models()
    settings = {"head": 10, "max_cutoff": 20, "n_trials": 12, "guard_folds": 4}
    outcome = fusion_tuning.tune_weighted_rank(models, answers, settings, 1)
    stacked = fusion.stack_ranks(models, 20)
    expected = fusion_tuning.out_of_fold_fusions(stacked, answers, settings, seed=1, folds=4)
    pd.testing.assert_frame_equal(outcome.cross_fitted, expected)
    recall = fusion_tuning.objective_per_user(outcome.cross_fitted, answers, None).mean()
    assert outcome.choice.scores[fusion_tuning.FUSION] == pytest.approx(recall)


def test_an_untrusted_fusion_falls_back_to_the_simplest_list_not_the_best_one():
    answers = _random_answers(40)
    candidates = {
        "ease": _lists_finding(40, set(range(20))),
        "lgbm_ranker": _lists_finding(40, set(range(21))),  # best, but not beyond the noise
    }
    settings = {"head": 10, "max_cutoff": 20, "n_trials": 8, "min_gain_se": 1e6}
    outcome = fusion_tuning.tune_weighted_rank(
        candidates, answers, settings, seed=1, second_stage=["lgbm_ranker"]
    )
    assert outcome.choice.chosen == "ease"
    assert outcome.fusion.weights == {"ease": 1.0, "lgbm_ranker": 0.0}


def test_the_ranks_of_some_users_fuse_as_those_users_do_in_the_whole_stack():
    models = {
        "a": ranked_lists({u: [u % 5, 7, 100 + u] for u in range(12)}),
        "b": ranked_lists({u: [7, 100 + u, 3] for u in range(12)}),
    }
    stacked = fusion.stack_ranks(models, 20)
    users = np.array([1, 4, 5, 11])
    weights = fusion.RankFusion({"a": 1.0, "b": 0.6}, cutoff=3, head=2, tail_weight=0.5)
    whole = fusion.fuse_stacked(stacked, weights)
    expected = whole[whole["user_idx"].isin(users)].reset_index(drop=True)
    pd.testing.assert_frame_equal(fusion.fuse_stacked(stacked.of_users(users), weights), expected)


def test_a_search_tunes_on_a_seeded_sample_of_at_most_max_users():
    answers = _random_answers(30)
    models = {"half": _lists_finding(30, set(range(15))), "rest": _lists_finding(30, {20, 21})}
    stacked = fusion.stack_ranks(models, 20)
    settings = {"head": 10, "max_cutoff": 20, "n_trials": 6, "max_users": 8}
    sample = splits.sample_users(answers["user_idx"].to_numpy(), 8, seed=2)
    assert len(sample) == 8 and np.array_equal(sample, np.unique(sample))
    _, history = fusion_tuning.search_fusion(stacked, answers, settings, seed=2)
    _, on_sample = fusion_tuning.search_fusion(
        stacked, answers[answers["user_idx"].isin(sample)], {**settings, "max_users": None}, 2
    )
    pd.testing.assert_frame_equal(history, on_sample)  # the same users, the same trials
    _, everyone = fusion_tuning.search_fusion(stacked, answers, {**settings, "max_users": 30}, 2)
    single = everyone.loc[everyone["w_half"].eq(1) & everyone["w_rest"].eq(0), "value"]
    assert single.iloc[0] == pytest.approx(0.5)  # "half" alone finds 15 of the 30 users
