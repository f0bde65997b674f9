import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from movie_rec.models.autoencoder import HistoryBatch, HistoryInput, multinomial_nll

CPU = torch.device("cpu")
ROWS = np.array(
    [[1.0, 0.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 1.0]], dtype=np.float32
)


def _batch(users: np.ndarray) -> HistoryBatch:
    return HistoryBatch.from_rows(sp.csr_matrix(ROWS), users, CPU)


def test_batch_holds_the_picked_rows_nonzeros_in_batch_order():
    batch = _batch(np.array([2, 0, 1]))
    assert batch.size == 3
    assert batch.items.tolist() == [1, 2, 3, 0, 2]
    assert batch.rows.tolist() == [0, 0, 0, 1, 1]
    assert batch.offsets.tolist() == [0, 3, 5]
    assert batch.values.tolist() == [1.0, 1.0, 1.0, 1.0, 2.0]
    assert batch.row_sums(batch.values).tolist() == [3.0, 3.0, 0.0]


def test_normalized_values_match_the_dense_rows_l2_normalised():
    batch = _batch(np.arange(3))
    dense = F.normalize(torch.from_numpy(ROWS), dim=1)
    torch.testing.assert_close(batch.normalized_values(), dense[batch.rows, batch.items])


def test_history_input_equals_a_linear_layer_on_the_dense_rows():
    torch.manual_seed(0)
    layer = HistoryInput(n_items=4, width=5)
    values = torch.rand(5)
    batch = _batch(np.arange(3))
    dense = torch.zeros(3, 4)
    dense[batch.rows, batch.items] = values
    expected = dense @ layer.weight + layer.bias
    torch.testing.assert_close(layer(batch, values), expected)
    assert layer(batch, values)[1].tolist() == layer.bias.tolist()  # an empty history


def test_multinomial_nll_weighs_each_log_probability_by_the_value():
    logits = torch.tensor([[0.5, 1.0, -1.0, 2.0], [0.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, 0.0]])
    expected = -(F.log_softmax(logits, dim=1) * torch.from_numpy(ROWS)).sum(dim=1)
    torch.testing.assert_close(multinomial_nll(logits, _batch(np.arange(3))), expected)
