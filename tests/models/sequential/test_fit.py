import pytest
import torch

from movie_rec.evaluation import check_candidates
from movie_rec.models.sequential.fit import build_model, evaluator, fit, predict

CPU = torch.device("cpu")
SETTINGS = {"max_len": 12, "hidden": 16, "heads": 2, "layers": 1, "batch_size": 64}
SETTINGS |= {"progress": False, "min_updates": 0}


def fitted_candidates(name, tiny_data, tiny_sequences, seed):
    sequences, n_items = tiny_sequences
    model = build_model(name, n_items, SETTINGS, seed)
    result = fit(model, sequences, SETTINGS, CPU, seed, name, epochs=2)
    assert result.epochs_run == 2
    return predict(model, sequences, tiny_data["train_matrix_valid"], 20, CPU)


@pytest.mark.parametrize("name", ["gru4rec", "bert4rec"])
def test_same_seed_same_candidates(name, tiny_data, tiny_sequences):
    first = fitted_candidates(name, tiny_data, tiny_sequences, seed=5)
    again = fitted_candidates(name, tiny_data, tiny_sequences, seed=5)
    other = fitted_candidates(name, tiny_data, tiny_sequences, seed=6)
    check_candidates(first, tiny_data["train_matrix_valid"], k=20)
    assert first.equals(again)
    assert not first.equals(other)


def test_early_stopping_keeps_the_best_epoch(tiny_data, tiny_sequences):
    sequences, n_items = tiny_sequences
    model = build_model("sasrec", n_items, SETTINGS, seed=0)
    evaluate = evaluator(
        model, sequences, tiny_data["train_matrix_valid"], tiny_data["valid_answers"], CPU
    )
    result = fit(
        model, sequences, {**SETTINGS, "max_epochs": 4, "patience": 1}, CPU, 0, "sasrec", evaluate
    )
    scores = [row["recall@10"] for row in result.history]
    assert result.best_score == max(scores)
    assert scores[result.best_epoch - 1] == result.best_score
    model.eval()
    with torch.no_grad():
        assert evaluate() == pytest.approx(result.best_score)


def test_unknown_model_and_missing_pretraining_are_errors():
    with pytest.raises(ValueError, match="unknown sequential model"):
        build_model("transformer_xl", 10, {}, seed=0)
    with pytest.raises(ValueError, match="pre-trained"):
        build_model("s3rec_sasrec", 10, {}, seed=0)
