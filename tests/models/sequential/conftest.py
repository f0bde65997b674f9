import pytest
import torch

from movie_rec.models.sequences import user_sequences


@pytest.fixture(scope="session")
def tiny_sequences(tiny_data):
    """The tiny preset's split_train histories and its item count."""
    matrix = tiny_data["train_matrix_valid"]
    return user_sequences(tiny_data["split_train"], matrix.shape[0]), matrix.shape[1]


def losses_fall(model, sequences, steps: int = 30, lr: float = 3e-3, batch_size: int = 64) -> bool:
    """Train ``steps`` updates; True when the mean loss of the last five is below the first five."""
    torch.manual_seed(0)
    examples = model.build_examples(sequences, torch.device("cpu"))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    pass_index = 0
    while len(losses) < steps:
        pass_index += 1
        for batch in examples.batches(batch_size, 0)(pass_index):
            loss = model.loss(batch)
            assert torch.isfinite(loss)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
    return sum(losses[-5:]) < sum(losses[:5])
