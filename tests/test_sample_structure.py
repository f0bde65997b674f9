"""The shipped sample has structure models can learn (DESIGN.md §3)."""

from movie_rec.evaluation import recall_at_k, top_k_unseen
from movie_rec.models.baselines import ItemCooccurrence, LastItemTransition, MostPopular
from movie_rec.models.sequences import user_sequences

CLEAR_MARGIN = 1.3  # at least 30% better than most-popular


def _recall(scorer, data):
    candidates = top_k_unseen(scorer.score, data["train_matrix_valid"], k=10)
    return recall_at_k(candidates, data["valid_answers"])


def test_cooccurrence_beats_popularity_on_random_items(sample_data):
    matrix = sample_data["train_matrix_valid"]
    popular = _recall(MostPopular(matrix), sample_data)
    cooc = _recall(ItemCooccurrence(matrix), sample_data)
    assert cooc["recall@10_random"] > CLEAR_MARGIN * popular["recall@10_random"]


def test_last_item_transition_beats_popularity_on_last_items(sample_data):
    matrix = sample_data["train_matrix_valid"]
    sequences = user_sequences(sample_data["split_train"], matrix.shape[0])
    popular = _recall(MostPopular(matrix), sample_data)
    transition = _recall(LastItemTransition(sequences, matrix.shape[1]), sample_data)
    assert transition["recall@10_last"] > CLEAR_MARGIN * popular["recall@10_last"]
