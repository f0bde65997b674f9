import math

import pytest
import torch
import torch.nn.functional as F

from movie_rec.models.sequential.bert4rec import BERT4Rec, BERT4RecConfig, cloze_mask
from movie_rec.models.sequential.data import Dropout, sample_negatives
from movie_rec.models.sequential.fit import Neural
from movie_rec.models.sequential.gru4rec import GRU4Rec, GRU4RecConfig
from movie_rec.models.sequential.losses import sampled_softmax_losses
from movie_rec.models.sequential.sasrec import SASRec, SASRecConfig
from movie_rec.models.sequential.srgnn import SRGNN, SRGNNConfig, session_graph

from .conftest import losses_fall

CPU = torch.device("cpu")
SMALL = {"max_len": 16, "hidden": 16, "heads": 2, "layers": 1, "dropout": 0.1}


def test_sasrec_causal_mask_hides_the_future():
    model = SASRec(30, SASRecConfig(**SMALL)).eval()
    rows = torch.tensor([[30, 30, 3, 4, 5, 6, 7, 8]])
    changed = rows.clone()
    changed[0, 5:] = torch.tensor([20, 21, 22])
    with torch.no_grad():
        before, after = model.states(rows), model.states(changed)
    torch.testing.assert_close(before[:, :5], after[:, :5])
    assert not torch.allclose(before[:, 5:], after[:, 5:])


def test_left_padding_does_not_change_predictions():
    for model in (
        SASRec(30, SASRecConfig(**SMALL)),
        GRU4Rec(30, GRU4RecConfig(max_len=16, hidden=16)),
        SRGNN(30, SRGNNConfig(max_len=16, hidden=16)),
    ):
        model.eval()
        short = torch.tensor([[3, 4, 5]])
        padded = torch.tensor([[30, 30, 3, 4, 5]])
        with torch.no_grad():
            torch.testing.assert_close(model.score_next(short), model.score_next(padded))


def test_cloze_mask_masks_the_share_and_never_padding():
    pad = 50
    rows = torch.randint(0, 50, (200, 20))
    lengths = torch.randint(1, 21, (200,))
    rows[torch.arange(20)[None, :] < (20 - lengths)[:, None]] = pad
    masked = cloze_mask(rows, 0.3, pad, torch.Generator().manual_seed(0))
    assert not masked[rows == pad].any()
    expected = torch.clamp(torch.round(lengths * 0.3), min=1)
    assert masked.sum(1).tolist() == expected.long().tolist()


def test_bert4rec_masks_with_the_mask_token_and_scores_after_it():
    model = BERT4Rec(30, BERT4RecConfig(**SMALL, mask_prob=0.5, last_mask_prob=0.0))
    windows = torch.tensor([[30, 30, 1, 2, 3, 4, 5, 6]])
    rows, inputs, masked = model.masked_batch(windows)
    assert masked.sum() == 3 and (inputs[masked] == model.mask).all()
    assert (inputs[~masked] == rows[~masked]).all()
    full = torch.randint(0, 30, (2, 16))
    assert model.eval().score_next(full).shape == (2, 30)


def test_srgnn_graph_of_a_sequence_with_repeats():
    pad = 10
    alias, adjacency = session_graph(torch.tensor([[pad, 5, 3, 5, 7]]), pad)
    # slots: 1 → item 5, 2 → item 3, 4 → item 7 (the second 5 maps to slot 1)
    assert alias[0, 1:].tolist() == [1, 2, 1, 4]
    edges = {(int(i), int(j)) for i, j in adjacency[0].nonzero()}
    assert edges == {(1, 2), (2, 1), (1, 4)}


@pytest.mark.parametrize(
    ("network", "config"),
    [
        (GRU4Rec, GRU4RecConfig),
        (SASRec, SASRecConfig),
        (BERT4Rec, BERT4RecConfig),
        (SRGNN, SRGNNConfig),
    ],
)
def test_training_loss_falls(network, config, tiny_sequences):
    sequences, n_items = tiny_sequences
    settings = config.from_params({**SMALL, "max_len": 12, "steps": 1})
    model = Neural(network)(settings).build(n_items, seed=0)
    assert losses_fall(model, sequences)


@pytest.mark.parametrize(
    ("loss", "horizon"), [("bce", 1), ("ce", 4), ("bce", 4), ("sampled", 1), ("sampled", 4)]
)
def test_next_item_losses_fall(loss, horizon, tiny_sequences):
    sequences, n_items = tiny_sequences
    for network, config in (
        (SASRec, SASRecConfig(**SMALL, loss=loss, horizon=horizon)),
        (GRU4Rec, GRU4RecConfig(max_len=16, hidden=16, loss=loss, horizon=horizon)),
    ):
        model = Neural(network)(config).build(n_items, seed=0)
        assert losses_fall(model, sequences), network.__name__


def test_sasrec_horizon_loss_averages_the_next_items_log_likelihood():
    windows = torch.tensor([[30, 30, 3, 4, 5, 6], [30, 7, 8, 9, 10, 11]])
    for horizon in (1, 3):
        model = SASRec(30, SASRecConfig(**SMALL, horizon=horizon)).eval()
        with torch.no_grad():
            log_probs = F.log_softmax(
                model.backbone.item_logits(model.states(windows[:, :-1])), dim=-1
            )
            expected = []
            for row, window in enumerate(windows.tolist()):
                for position in range(len(window) - 1):
                    if window[position] == 30:
                        continue
                    for target in window[position + 1 : position + 1 + horizon]:
                        expected.append(-log_probs[row, position, target])
            torch.testing.assert_close(model.loss(windows), torch.stack(expected).mean())


@pytest.mark.parametrize(
    "model",
    [
        SASRec(30, SASRecConfig(**SMALL, horizon=3, horizon_decay=0.5)),
        GRU4Rec(30, GRU4RecConfig(max_len=16, hidden=16, horizon=3, horizon_decay=0.5)),
    ],
)
def test_horizon_decay_discounts_later_targets_by_hand(model):
    windows = torch.tensor([[30, 30, 3, 4, 5, 6], [30, 7, 8, 9, 10, 11]])
    model.eval()
    with torch.no_grad():
        states = model.states(windows[:, :-1])
        logits = (
            model.backbone.item_logits(states)
            if isinstance(model, SASRec)
            else model.logits(states)
        )
        log_probs = F.log_softmax(logits, -1)
        total, weight = 0.0, 0.0
        for row, window in enumerate(windows.tolist()):
            for position in range(len(window) - 1):
                if window[position] == 30:
                    continue
                following = window[position + 1 : position + 4]
                for place, target in enumerate(following):
                    total += -(0.5**place) * log_probs[row, position, target].item()
                    weight += 0.5**place
        assert model.loss(windows).item() == pytest.approx(total / weight, rel=1e-5)


def test_sampled_softmax_by_hand():
    positive = torch.tensor([[2.0, 0.5], [1.0, -1.0]])  # (N=2, H=2) logits of the targets
    negative = torch.tensor([[0.0, 1.0, 3.0], [0.5, -0.5, 2.0]])  # (N, S=3) shared negatives
    targets = torch.tensor([[4, 7], [9, 5]])
    negatives = torch.tensor([7, 1, 9])  # 7 is row 0's 2nd target, 9 is row 1's 1st
    expected = [
        -2.0 + math.log(math.exp(2.0) + math.exp(0.0) + math.exp(1.0) + math.exp(3.0)),
        -0.5 + math.log(math.exp(0.5) + math.exp(1.0) + math.exp(3.0)),  # 7 left out
        -1.0 + math.log(math.exp(1.0) + math.exp(0.5) + math.exp(-0.5)),  # 9 left out
        1.0 + math.log(math.exp(-1.0) + math.exp(0.5) + math.exp(-0.5) + math.exp(2.0)),
    ]
    losses = sampled_softmax_losses(positive, negative, targets, negatives)
    assert losses.flatten().tolist() == pytest.approx(expected)


def _output_logits(model: torch.nn.Module, states: torch.Tensor) -> torch.Tensor:
    """Every real item's logit, written out per model: SASRec's tied embeddings, GRU4Rec's
    output layer with its bias."""
    if isinstance(model, GRU4Rec):
        return states @ model.output.weight.T + model.output.bias
    return states @ model.backbone.item_embedding.weight[: model.n_items].T


@pytest.mark.parametrize(
    "model",
    [
        SASRec(30, SASRecConfig(**SMALL, loss="sampled", negatives=5, horizon=2)),
        GRU4Rec(30, GRU4RecConfig(max_len=16, hidden=16, loss="sampled", negatives=5, horizon=2)),
    ],
)
def test_sampled_loss_uses_one_shared_draw_of_real_items(model):
    windows = torch.tensor([[30, 30, 3, 4, 5, 6], [30, 7, 8, 9, 10, 11]])
    model.eval()
    with torch.no_grad():
        loss = model.loss(windows)
        model.generator.reset()
        negatives = sample_negatives((5,), 30, model.generator.on(CPU), CPU)
        logits = _output_logits(model, model.states(windows[:, :-1]))
        expected = []
        for row, window in enumerate(windows.tolist()):
            for position in range(len(window) - 1):
                if window[position] == 30:
                    continue
                for target in window[position + 1 : position + 3]:
                    others = [n for n in negatives.tolist() if n != target]
                    row_logits = logits[row, position, [target, *others]]
                    expected.append(-F.log_softmax(row_logits, dim=0)[0])
        model.generator.reset()
        torch.testing.assert_close(model.loss(windows), torch.stack(expected).mean())
    assert loss.isfinite()


def test_gru4rec_bce_loss_by_hand():
    windows = torch.tensor([[30, 3, 4, 5]])  # positions 1 and 2 predict 4 and 5
    model = GRU4Rec(30, GRU4RecConfig(max_len=16, hidden=16, loss="bce")).eval()
    with torch.no_grad():
        logits = _output_logits(model, model.states(windows[:, :-1]))[0]
        negatives = sample_negatives((2, 1), 30, model.generator.on(CPU), CPU)[:, 0].tolist()
        expected = [
            (F.softplus(-logits[position, target]) + F.softplus(logits[position, negative])) / 2
            for position, target, negative in zip((1, 2), (4, 5), negatives, strict=True)
        ]
        model.generator.reset()
        torch.testing.assert_close(model.loss(windows), torch.stack(expected).mean())


def test_dropout_keeps_each_value_with_chance_one_minus_p_scaled_up():
    layer = Dropout(0.3)
    x = torch.ones(200_000)
    torch.manual_seed(0)
    dropped = layer.train()(x)
    kept = dropped != 0
    assert kept.float().mean().item() == pytest.approx(0.7, abs=0.01)
    assert torch.allclose(dropped[kept], torch.full_like(dropped[kept], 1 / 0.7))
    assert torch.equal(layer.eval()(x), x)
    with pytest.raises(ValueError, match="dropout"):
        Dropout(1.0)
