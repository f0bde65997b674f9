import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from movie_rec.evaluation import check_candidates, recall_at_k, top_k_unseen
from movie_rec.models.protocol import FitRun, Start, TrainingData
from movie_rec.models.sequences import user_sequences
from movie_rec.models.sequential.bert4rec import BERT4Rec, BERT4RecConfig
from movie_rec.models.sequential.data import SequentialConfig
from movie_rec.models.sequential.fit import Neural, SequenceRecommender, SequenceScorer
from movie_rec.models.sequential.gru4rec import GRU4Rec, GRU4RecConfig
from movie_rec.models.sequential.sasrec import SASRec, SASRecConfig
from movie_rec.models.sequential.srgnn import SRGNNConfig
from movie_rec.models.sequential.transformer import TransformerConfig
from movie_rec.models.training import TrainConfig

CPU = torch.device("cpu")
SETTINGS = {"max_len": 12, "hidden": 16, "heads": 2, "layers": 1, "batch_size": 64}
TRAIN = TrainConfig(eval_every=5, progress=False)
NETWORKS = {"gru4rec": (GRU4Rec, GRU4RecConfig), "bert4rec": (BERT4Rec, BERT4RecConfig)}


def fitted_candidates(name, tiny_data, seed):
    network, config = NETWORKS[name]
    model = Neural(network)(config.from_params(SETTINGS))
    data = TrainingData(tiny_data["train_matrix_valid"], tiny_data["split_train"])
    result = model.fit(data, FitRun(seed=seed, train=TRAIN, stop_at=7, name=name))
    assert result.updates == 7 and result.best_update == 7
    return top_k_unseen(model.score, data.matrix, 20)


@pytest.mark.parametrize("name", list(NETWORKS))
def test_same_seed_same_candidates(name, tiny_data):
    first = fitted_candidates(name, tiny_data, seed=5)
    again = fitted_candidates(name, tiny_data, seed=5)
    other = fitted_candidates(name, tiny_data, seed=6)
    check_candidates(first, tiny_data["train_matrix_valid"], k=20)
    assert first.equals(again)
    assert not first.equals(other)


def test_early_stopping_keeps_the_best_update(tiny_data):
    answers, seen = tiny_data["valid_answers"], tiny_data["train_matrix_valid"]
    users = np.unique(answers["user_idx"].to_numpy())
    model = Neural(SASRec)(SASRecConfig.from_params(SETTINGS))

    def evaluate(score_fn) -> float:
        top = top_k_unseen(score_fn, seen, 10, users=users)
        return recall_at_k(top, answers, k=10)["recall@10"]

    config = TrainConfig(max_updates=20, eval_every=5, patience=2, progress=False)
    result = model.fit(
        TrainingData(seen, tiny_data["split_train"]), FitRun(train=config, evaluate=evaluate)
    )
    scores = {row["update"]: row["recall@10"] for row in result.history}
    assert result.best_score == max(scores.values())
    assert scores[result.best_update] == result.best_score
    assert evaluate(model.score) == pytest.approx(result.best_score)  # the best weights are kept


def test_a_fit_that_continues_another_starts_from_its_weights_and_update(tiny_data):
    config = GRU4RecConfig.from_params(SETTINGS)
    first = Neural(GRU4Rec)(config)
    valid = TrainingData(tiny_data["train_matrix_valid"], tiny_data["split_train"])
    first.fit(valid, FitRun(seed=5, train=TRAIN, stop_at=6))
    full = TrainingData(tiny_data["train_matrix_full"], tiny_data["interactions"])

    as_is = Neural(GRU4Rec)(config)
    result = as_is.fit(full, FitRun(seed=5, train=TRAIN, stop_at=6, start=Start(first, 6)))
    assert result.updates == 6 and result.passes == 0
    for name, value in first.network.state_dict().items():
        assert torch.equal(value, as_is.network.state_dict()[name])
    assert not torch.equal(as_is.score(np.arange(5)), first.score(np.arange(5)))  # full histories

    moved = Neural(GRU4Rec)(config)
    result = moved.fit(full, FitRun(seed=5, train=TRAIN, stop_at=9, start=Start(first, 6)))
    assert result.updates == 9
    fresh = Neural(GRU4Rec)(config)
    fresh.fit(full, FitRun(seed=7, train=TRAIN, stop_at=3))

    def distance(model: SequenceRecommender) -> float:
        start = first.network.output.weight
        return float((model.network.output.weight - start).norm())

    assert 0 < distance(moved) < distance(fresh) / 2  # three updates on from the kept weights
    with pytest.raises(ValueError, match="before start_update"):
        Neural(GRU4Rec)(config).fit(full, FitRun(train=TRAIN, stop_at=5, start=Start(first, 6)))


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


def test_every_config_has_the_shared_defaults():
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
        (GRU4RecConfig, {"loss": "hinge"}, "loss must be one of"),
        (GRU4RecConfig, {"loss": "sampled", "negatives": 0}, "negatives must be at least 1"),
        (BERT4RecConfig, {"hidden": 64, "heads": 3}, "multiple of heads"),
        (TransformerConfig, {"heads": 0}, "multiple of heads"),
    ],
)
def test_configs_reject_what_cannot_be_built(config, fields, complaint):
    with pytest.raises(ValueError, match=complaint):
        config(**fields)


def test_the_adapter_builds_the_network_and_scores_only_after_fit():
    model = Neural(SASRec)(SASRecConfig(**SETTINGS))
    assert isinstance(model, SequenceRecommender) and Neural(SASRec).extra_inputs == ()
    network = model.build(10, seed=0)
    assert isinstance(network, SASRec) and network.config == SASRecConfig(**SETTINGS)
    with pytest.raises(RuntimeError, match="before fit"):
        model.score(np.array([0]))
