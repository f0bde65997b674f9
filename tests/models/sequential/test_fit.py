import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from movie_rec.evaluation import check_candidates, recall_at_k, top_k_unseen
from movie_rec.models.sequences import user_sequences
from movie_rec.models.sequential.bert4rec import BERT4RecConfig
from movie_rec.models.sequential.data import SequentialConfig
from movie_rec.models.sequential.fit import (
    ARCHITECTURES,
    SequenceScorer,
    architecture,
    build_model,
    fit,
)
from movie_rec.models.sequential.gru4rec import GRU4RecConfig
from movie_rec.models.sequential.sasrec import SASRecConfig
from movie_rec.models.sequential.srgnn import SRGNNConfig
from movie_rec.models.sequential.transformer import TransformerConfig
from movie_rec.models.training import TrainConfig

CPU = torch.device("cpu")
SETTINGS = {"max_len": 12, "hidden": 16, "heads": 2, "layers": 1, "batch_size": 64}
TRAIN = TrainConfig(eval_every=5, progress=False)


def small(name: str) -> SequentialConfig:
    return architecture(name).config.from_params(SETTINGS)


def fitted_candidates(name, tiny_data, tiny_sequences, seed):
    sequences, n_items = tiny_sequences
    model = build_model(name, n_items, small(name), seed)
    result = fit(model, sequences, TRAIN, CPU, seed, name, stop_at=7)
    assert result.updates == 7 and result.best_update == 7
    scorer = SequenceScorer(model, sequences, CPU)
    return top_k_unseen(scorer.score, tiny_data["train_matrix_valid"], 20)


@pytest.mark.parametrize("name", ["gru4rec", "bert4rec"])
def test_same_seed_same_candidates(name, tiny_data, tiny_sequences):
    first = fitted_candidates(name, tiny_data, tiny_sequences, seed=5)
    again = fitted_candidates(name, tiny_data, tiny_sequences, seed=5)
    other = fitted_candidates(name, tiny_data, tiny_sequences, seed=6)
    check_candidates(first, tiny_data["train_matrix_valid"], k=20)
    assert first.equals(again)
    assert not first.equals(other)


def test_early_stopping_keeps_the_best_update(tiny_data, tiny_sequences):
    sequences, n_items = tiny_sequences
    answers, seen = tiny_data["valid_answers"], tiny_data["train_matrix_valid"]
    users = np.unique(answers["user_idx"].to_numpy())
    model = build_model("sasrec", n_items, small("sasrec"), seed=0)
    scorer = SequenceScorer(model, sequences, CPU)

    def evaluate() -> float:
        top = top_k_unseen(scorer.score, seen, 10, users=users)
        return recall_at_k(top, answers, k=10)["recall@10"]

    config = TrainConfig(max_updates=20, eval_every=5, patience=2, progress=False)
    result = fit(model, sequences, config, CPU, 0, "sasrec", evaluate)
    scores = {row["update"]: row["recall@10"] for row in result.history}
    assert result.best_score == max(scores.values())
    assert scores[result.best_update] == result.best_score
    assert evaluate() == pytest.approx(result.best_score)  # the best weights are kept


def test_the_scorer_reads_the_last_items_and_top_k_skips_the_seen():
    histories = {0: [3, 1, 2], 1: [3], 2: []}
    rows = [(u, item, t) for u, items in histories.items() for t, item in enumerate(items)]
    sequences = user_sequences(pd.DataFrame(rows, columns=["user_idx", "item_idx", "time"]), 3)

    class NextOfLast(torch.nn.Module):
        """Scores 1 for the item after the last one (cyclic), 0.1 for the rest."""

        n_items, max_len, pad = 4, 2, 9

        def score_next(self, rows: torch.Tensor) -> torch.Tensor:
            assert rows.shape[1] <= self.max_len
            scores = torch.full((len(rows), self.n_items), 0.1)
            scores[torch.arange(len(rows)), (rows[:, -1] + 1) % self.n_items] = 1.0
            return scores

    scorer = SequenceScorer(NextOfLast(), sequences, CPU)
    np.testing.assert_array_equal(scorer.inputs, [[1, 2], [9, 3], [9, 9]])
    seen = sp.csr_matrix(np.array([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], dtype=np.float32))
    top = top_k_unseen(scorer.score, seen, k=1, users=np.array([0, 1]))
    assert dict(zip(top["user_idx"], top["item_idx"], strict=True)) == {0: 3, 1: 0}
    top = top_k_unseen(scorer.score, seen, k=2, users=np.array([1]))
    assert top["item_idx"].tolist()[0] == 0 and 3 not in top["item_idx"].tolist()


def test_each_model_has_its_config_and_the_shared_defaults():
    assert {name: arch.config for name, arch in ARCHITECTURES.items()} == {
        "gru4rec": GRU4RecConfig,
        "sasrec": SASRecConfig,
        "bert4rec": BERT4RecConfig,
        "srgnn": SRGNNConfig,
        "s3rec_sasrec": SASRecConfig,
        "s3rec_bert4rec": BERT4RecConfig,
    }
    shared = SequentialConfig()
    assert (shared.max_len, shared.hidden, shared.dropout) == (200, 64, 0.2)
    assert (shared.batch_size, shared.lr, shared.weight_decay) == (128, 1e-3, 0.0)
    assert SRGNNConfig().max_len == 50 and GRU4RecConfig().layers == 1
    config = SASRecConfig.from_params({"loss": "bce", "horizon": 3, "steps": 2})
    assert config == SASRecConfig(loss="bce", horizon=3)
    assert SASRecConfig.from_params(config.to_dict()) == config


@pytest.mark.parametrize(
    ("config", "fields", "complaint"),
    [
        (SASRecConfig, {"loss": "focal"}, "loss must be one of"),
        (SASRecConfig, {"horizon": 0}, "horizon must be at least 1"),
        (BERT4RecConfig, {"hidden": 64, "heads": 3}, "multiple of heads"),
        (TransformerConfig, {"heads": 0}, "multiple of heads"),
    ],
)
def test_configs_reject_what_cannot_be_built(config, fields, complaint):
    with pytest.raises(ValueError, match=complaint):
        config(**fields)


def test_unknown_model_and_missing_pretraining_are_errors():
    with pytest.raises(ValueError, match="unknown sequential model"):
        build_model("transformer_xl", 10, SASRecConfig(), seed=0)
    with pytest.raises(ValueError, match="pre-trained"):
        build_model("s3rec_sasrec", 10, SASRecConfig(), seed=0)
