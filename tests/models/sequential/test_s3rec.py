import numpy as np
import pytest
import torch

from movie_rec.models.sequential.bert4rec import BERT4Rec, BERT4RecConfig
from movie_rec.models.sequential.data import WindowExamples
from movie_rec.models.sequential.fit import Neural, pretrain_s3rec
from movie_rec.models.sequential.s3rec import (
    OBJECTIVES,
    PRETRAINED,
    S3RecConfig,
    S3RecPretrainer,
    attribute_matrix,
)
from movie_rec.models.sequential.sasrec import SASRec, SASRecConfig
from movie_rec.models.training import TrainConfig

CPU = torch.device("cpu")
SHAPE = {"max_len": 12, "hidden": 16, "heads": 2, "layers": 1}


@pytest.fixture(scope="module")
def genres(tiny_data, tiny_sequences):
    _, n_items = tiny_sequences
    return attribute_matrix(
        tiny_data["item_features"],
        tiny_data["item_directors"],
        tiny_data["item_writers"],
        n_items,
        ["genre"],
    )


def test_attribute_matrix_kinds(tiny_data, tiny_sequences, genres):
    _, n_items = tiny_sequences
    features = tiny_data["item_features"]
    genre_columns = [c for c in features.columns if c.startswith("genre_")]
    assert genres.shape == (n_items, len(genre_columns))
    row = features.iloc[0]
    np.testing.assert_array_equal(genres[row["item_idx"]], row[genre_columns].to_numpy(np.float32))
    everything = attribute_matrix(
        features,
        tiny_data["item_directors"],
        tiny_data["item_writers"],
        n_items,
        ["genre", "director", "writer", "year"],
    )
    n_people = tiny_data["item_directors"]["director"].nunique()
    n_people += tiny_data["item_writers"]["writer"].nunique()
    assert everything.shape[1] > genres.shape[1] + n_people
    with pytest.raises(ValueError, match="attributes"):
        attribute_matrix(
            features, tiny_data["item_directors"], tiny_data["item_writers"], n_items, ["mood"]
        )


def objective_values(model: S3RecPretrainer, batch: torch.Tensor) -> dict[str, float]:
    model.eval()
    model.generator.reset()  # the same masks and negatives every time
    with torch.no_grad():
        values = {name: float(value) for name, value in model.objectives(batch).items()}
    model.train()
    return values


def test_each_objective_is_finite_and_falls(tiny_sequences, genres):
    sequences, n_items = tiny_sequences
    torch.manual_seed(0)
    model = S3RecPretrainer(n_items, genres, S3RecConfig(**SHAPE, dropout=0.0))
    examples = WindowExamples.build(sequences, SHAPE["max_len"], model.pad, CPU)
    batch = examples.windows[:128]
    before = objective_values(model, batch)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    for pass_index in range(1, 4):
        for windows in examples.batches(64, 0)(pass_index):
            loss = model.loss(windows)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    after = objective_values(model, batch)
    assert set(before) == set(OBJECTIVES)
    assert all(np.isfinite(value) for value in before.values())
    falling = {name: after[name] < before[name] for name in OBJECTIVES}
    assert all(falling.values()), (before, after)


@pytest.mark.parametrize(
    ("network", "network_config"), [(SASRec, SASRecConfig), (BERT4Rec, BERT4RecConfig)]
)
def test_fine_tuning_starts_from_the_pretrained_weights(
    network, network_config, tiny_sequences, genres
):
    sequences, _ = tiny_sequences
    s3rec = S3RecConfig(**SHAPE, pretrain_updates=3, batch_size=64)
    train = TrainConfig(eval_every=2, progress=False)
    pretrained, result = pretrain_s3rec(sequences, genres, s3rec, train, CPU, seed=0)
    assert result.updates == 3 and [row["update"] for row in result.history] == [2, 3]
    assert pretrained["config"] == {"n_items": genres.shape[0], **SHAPE}
    config = network_config(dropout=0.1)  # the backbone's shape is the default
    fine_tuned = Neural(network, PRETRAINED)(config)
    assert Neural(network, PRETRAINED).extra_inputs == (PRETRAINED,)
    model = fine_tuned.build(genres.shape[0], seed=1, backbone=pretrained)
    assert model.config == network_config(dropout=0.1, **SHAPE)
    torch.testing.assert_close(
        model.backbone.item_embedding.weight, pretrained["backbone"]["item_embedding.weight"]
    )
    fresh = Neural(network)(network_config(**SHAPE)).build(genres.shape[0], seed=1)
    assert not torch.allclose(
        fresh.backbone.item_embedding.weight, pretrained["backbone"]["item_embedding.weight"]
    )
    with pytest.raises(ValueError, match="item set"):
        fine_tuned.build(genres.shape[0] + 1, seed=1, backbone=pretrained)
    with pytest.raises(ValueError, match="pre-trained S3Rec"):
        fine_tuned.build(genres.shape[0], seed=1)
