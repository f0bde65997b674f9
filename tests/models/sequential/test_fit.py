import pytest
import torch

from movie_rec.evaluation import check_candidates, top_k_unseen
from movie_rec.models.sequential.fit import SequenceScorer, build_model, evaluator, fit, predict
from movie_rec.models.training import TrainConfig

CPU = torch.device("cpu")
SETTINGS = {"max_len": 12, "hidden": 16, "heads": 2, "layers": 1, "batch_size": 64}
TRAIN = TrainConfig(eval_every=5, progress=False)


def fitted_candidates(name, tiny_data, tiny_sequences, seed):
    sequences, n_items = tiny_sequences
    model = build_model(name, n_items, SETTINGS, seed)
    result = fit(model, sequences, SETTINGS, TRAIN, CPU, seed, name, stop_at=7)
    assert result.updates == 7 and result.best_update == 7
    return predict(model, sequences, tiny_data["train_matrix_valid"], 20, CPU)


@pytest.mark.parametrize("name", ["gru4rec", "bert4rec"])
def test_same_seed_same_candidates(name, tiny_data, tiny_sequences):
    first = fitted_candidates(name, tiny_data, tiny_sequences, seed=5)
    again = fitted_candidates(name, tiny_data, tiny_sequences, seed=5)
    other = fitted_candidates(name, tiny_data, tiny_sequences, seed=6)
    check_candidates(first, tiny_data["train_matrix_valid"], k=20)
    assert first.equals(again)
    assert not first.equals(other)


@pytest.mark.parametrize("signal", ["overall", "last"])
def test_early_stopping_keeps_the_best_update(signal, tiny_data, tiny_sequences):
    sequences, n_items = tiny_sequences
    model = build_model("sasrec", n_items, SETTINGS, seed=0)
    evaluate = evaluator(
        model, sequences, tiny_data["train_matrix_valid"], tiny_data["valid_answers"], CPU, signal
    )
    config = TrainConfig(max_updates=20, eval_every=5, patience=2, progress=False)
    result = fit(model, sequences, SETTINGS, config, CPU, 0, "sasrec", evaluate)
    scores = {row["update"]: row["recall@10"] for row in result.history}
    assert result.best_score == max(scores.values())
    assert scores[result.best_update] == result.best_score
    model.eval()
    with torch.no_grad():
        assert evaluate() == pytest.approx(result.best_score)
    key = "recall@10" if signal == "overall" else "recall@10_last"
    assert evaluate.metrics[key] == pytest.approx(result.best_score)


def test_evaluator_signal_must_be_known(tiny_data, tiny_sequences):
    sequences, n_items = tiny_sequences
    model = build_model("sasrec", n_items, SETTINGS, seed=0)
    with pytest.raises(ValueError, match="signal"):
        evaluator(model, sequences, tiny_data["train_matrix_valid"], tiny_data["valid_answers"],
                  CPU, "random")  # fmt: skip


def test_scorer_gives_the_candidates_of_predict(tiny_data, tiny_sequences):
    sequences, n_items = tiny_sequences
    model = build_model("gru4rec", n_items, SETTINGS, seed=0)
    fit(model, sequences, SETTINGS, TRAIN, CPU, 0, "gru4rec", stop_at=3)
    seen = tiny_data["train_matrix_valid"]
    top = top_k_unseen(SequenceScorer(model, sequences, CPU).score, seen, 10)
    expected = predict(model, sequences, seen, 10, CPU)
    merged = top.merge(expected, on=["user_idx", "rank"])
    assert len(merged) == len(expected) and (merged["item_idx_x"] == merged["item_idx_y"]).all()


def test_unknown_model_and_missing_pretraining_are_errors():
    with pytest.raises(ValueError, match="unknown sequential model"):
        build_model("transformer_xl", 10, {}, seed=0)
    with pytest.raises(ValueError, match="pre-trained"):
        build_model("s3rec_sasrec", 10, {}, seed=0)
