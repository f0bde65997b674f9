"""The sequence toolkit every sequential model shares.

Id layout: item ``i`` of the dense ids keeps index ``i``; ``pad_id(n_items) == n_items`` is
the padding row and ``mask_id(n_items) == n_items + 1`` BERT4Rec's (and S3Rec's) mask
token, both extra embedding rows. Models score only the ``n_items`` real items.

* :func:`left_padded` — each user's last ``max_len`` items, left-padded: the one model
  input for prediction.
* :class:`WindowExamples` — training windows of ``max_len + 1`` items cut once from every
  history (long histories give several windows) and reused every pass; next-item models
  read inputs ``w[:, :-1]`` and targets ``w[:, 1:]`` (all prefixes at once; with
  :func:`next_items`, also the items after the next).
* :class:`PrefixExamples` — one example per position (the window ending before it and the
  item at it), gathered lazily, for models that read one target per sequence (SRGNN).
* :func:`sample_negatives` — negatives drawn from the real items only.
* :class:`Dropout` — dropout drawn from uniforms (fast on the CPU).
* :class:`SequentialConfig` — what every neural sequence model's config holds: input
  length, width, dropout and the optimiser's batch size, learning rate and weight decay.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from movie_rec.models.config import ParamsConfig
from movie_rec.models.sequences import UserSequences

IGNORE = -100  # target value the losses skip (cross_entropy's ignore_index)
LOSSES = ("ce", "sampled", "bce")  # HorizonConfig.loss: full softmax, sampled softmax, BCE


@dataclass(frozen=True)
class SequentialConfig(ParamsConfig):
    """What every neural sequence model reads; each model's config adds its own fields.

    ``max_len`` is how many of the latest items the model reads, ``hidden`` the width of
    its item embeddings; ``batch_size`` (training examples per update), ``lr`` and
    ``weight_decay`` set the Adam optimiser of :func:`movie_rec.models.sequential.fit.fit`.
    """

    max_len: int = 200
    hidden: int = 64
    dropout: float = 0.2
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0


@dataclass(frozen=True)
class HorizonConfig(SequentialConfig):
    """What a next-item model trained on several next items reads: every position predicts
    the ``horizon`` items that follow it, the one ``d`` places after the next weighted
    ``horizon_decay ** d`` (:func:`discounted_mean`). ``horizon=1`` is next-item training.
    ``loss`` is one of :data:`LOSSES` (:mod:`movie_rec.models.sequential.losses`);
    ``negatives`` is the sampled softmax's shared draw of items per update."""

    horizon: int = 1
    horizon_decay: float = 1.0
    loss: str = "ce"
    negatives: int = 256

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.negatives < 1:
            raise ValueError(f"negatives must be at least 1, got {self.negatives}")
        if self.horizon < 1:
            raise ValueError(f"horizon must be at least 1, got {self.horizon}")
        if not 0.0 < self.horizon_decay <= 1.0:
            raise ValueError(f"horizon_decay must be in (0, 1], got {self.horizon_decay}")


class Dropout(torch.nn.Module):
    """Inverted dropout whose mask compares uniform draws with ``p``: the same layer as
    ``nn.Dropout`` (and the same global generator), but ``bernoulli_`` costs about three
    times as much as ``rand_like`` on the CPU, where it took a third of SASRec's update."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand_like(x) >= self.p
        return x * keep / (1.0 - self.p)


def pad_id(n_items: int) -> int:
    return n_items


def mask_id(n_items: int) -> int:
    return n_items + 1


def _windows_from(
    sequences: UserSequences, users: np.ndarray, ends: np.ndarray, width: int, pad: int
) -> np.ndarray:
    """Rows of ``width`` items ending (exclusive) at flat offsets ``ends``, left-padded."""
    starts = sequences.offsets[users]
    index = ends[:, None] - width + np.arange(width)[None, :]
    valid = index >= starts[:, None]
    rows = np.full(index.shape, pad, dtype=np.int64)
    rows[valid] = sequences.items[index[valid]]
    return rows


def left_padded(sequences: UserSequences, max_len: int, pad: int) -> np.ndarray:
    """``(n_users, max_len)``: every user's last ``max_len`` items, oldest first, padded left."""
    users = np.arange(sequences.n_users)
    return _windows_from(sequences, users, sequences.offsets[1:], max_len, pad)


def trim_padding(rows: torch.Tensor, pad: int) -> torch.Tensor:
    """Drop the leading columns that are padding in every row (all-pad rows keep one)."""
    real = (rows != pad).any(dim=0)
    first = int(real.to(torch.int8).argmax()) if bool(real.any()) else rows.shape[1] - 1
    return rows[:, first:]


BUCKET_BATCHES = 32  # batches whose examples are grouped by length


def batch_order(
    lengths: np.ndarray, batch_size: int, seed: int, pass_index: int
) -> Iterator[np.ndarray]:
    """Shuffled index batches of similar lengths, reproducible for ``(seed, pass_index)``.

    A random permutation is cut into buckets of ``BUCKET_BATCHES`` batches, each bucket
    is sorted by length and cut into batches, and the batches are shuffled: batches stay
    random but carry little padding, which :func:`trim_padding` then drops.
    """
    rng = np.random.default_rng([seed, pass_index])
    order = rng.permutation(len(lengths))
    bucket = batch_size * BUCKET_BATCHES
    batches = []
    for start in range(0, len(order), bucket):
        chunk = order[start : start + bucket]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    for index in rng.permutation(len(batches)):
        yield batches[index]


@dataclass
class WindowExamples:
    """Training windows of ``max_len + 1`` items, built once, kept on the device."""

    windows: torch.Tensor
    pad: int

    @classmethod
    def build(
        cls, sequences: UserSequences, max_len: int, pad: int, device: torch.device
    ) -> WindowExamples:
        """Cut each history from its end into windows of ``max_len + 1`` items.

        Consecutive windows overlap by one item so that every item but a user's first
        is a next-item target exactly once. Users with fewer than two items give none.
        """
        width = max_len + 1
        lengths = sequences.lengths()
        users, ends = [], []
        for step in range(int(np.ceil(max(lengths.max(initial=0) - 1, 0) / max_len))):
            has = lengths - 1 > step * max_len
            users.append(np.flatnonzero(has))
            ends.append(sequences.offsets[1:][has] - step * max_len)
        users_arr = np.concatenate(users) if users else np.zeros(0, dtype=np.int64)
        ends_arr = np.concatenate(ends) if ends else np.zeros(0, dtype=np.int64)
        rows = _windows_from(sequences, users_arr, ends_arr, width, pad)
        return cls(torch.as_tensor(rows, device=device), pad)

    def __len__(self) -> int:
        return len(self.windows)

    def batches(self, batch_size: int, seed: int) -> Callable[[int], Iterator[torch.Tensor]]:
        """``batches(pass_index)`` for :func:`movie_rec.models.training.train`: trimmed windows."""

        lengths = (self.windows != self.pad).sum(1).cpu().numpy()

        def one_pass(pass_index: int) -> Iterator[torch.Tensor]:
            for index in batch_order(lengths, batch_size, seed, pass_index):
                rows = self.windows[torch.as_tensor(index, device=self.windows.device)]
                yield trim_padding(rows, self.pad)

        return one_pass


def next_items(
    windows: torch.Tensor, pad: int, horizon: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``w[:, :-1]`` and, at every position, the ``horizon`` items that follow it.

    Targets are ``(B, W, horizon)``: ``[..., 0]`` is the next item ``w[:, 1:]``, ``[..., d]``
    the item ``d`` places later; ``IGNORE`` past the window's end and at padded inputs.
    """
    inputs = windows[:, :-1]
    width = inputs.shape[1]
    targets = torch.full(
        (*inputs.shape, horizon), IGNORE, dtype=windows.dtype, device=windows.device
    )
    for step in range(min(horizon, width)):
        targets[:, : width - step, step] = windows[:, 1 + step :]
    return inputs, targets.masked_fill((inputs == pad)[..., None], IGNORE)


def discounted_mean(losses: torch.Tensor, targets: torch.Tensor, decay: float) -> torch.Tensor:
    """Mean of ``(N, horizon)`` per-target ``losses`` over the targets that are not
    ``IGNORE``, the one ``d`` places after the next weighing ``decay ** d``."""
    valid = targets != IGNORE
    places = torch.arange(targets.shape[1], device=losses.device, dtype=torch.float32)
    weights = (decay**places).expand_as(losses)[valid]
    return (losses[valid] * weights).sum() / weights.sum()


@dataclass
class PrefixExamples:
    """One example per position ``t >= 1`` of every history: (items before ``t``, item ``t``)."""

    items: torch.Tensor
    starts: torch.Tensor
    positions: torch.Tensor
    max_len: int
    pad: int

    @classmethod
    def build(
        cls, sequences: UserSequences, max_len: int, pad: int, device: torch.device
    ) -> PrefixExamples:
        lengths = sequences.lengths()
        user_of = np.repeat(np.arange(sequences.n_users), lengths)
        positions = np.arange(len(sequences.items))
        keep = positions > sequences.offsets[user_of]
        return cls(
            torch.tensor(sequences.items, device=device),
            torch.as_tensor(sequences.offsets[user_of][keep], device=device),
            torch.as_tensor(positions[keep], device=device),
            max_len,
            pad,
        )

    def __len__(self) -> int:
        return len(self.positions)

    def gather(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded ``(B, max_len)`` histories and ``(B,)`` targets of examples ``index``."""
        ends, starts = self.positions[index], self.starts[index]
        offsets = torch.arange(-self.max_len, 0, device=ends.device)
        flat = ends[:, None] + offsets[None, :]
        rows = torch.where(
            flat >= starts[:, None], self.items[flat.clamp(min=0)], torch.full_like(flat, self.pad)
        )
        return trim_padding(rows, self.pad), self.items[ends]

    def batches(
        self, batch_size: int, seed: int
    ) -> Callable[[int], Iterator[tuple[torch.Tensor, torch.Tensor]]]:
        """``batches(pass_index)`` for :func:`movie_rec.models.training.train`.

        A pass visits every position once; the loop's update budget, not the pass, decides
        how many it sees, so a pass may be millions of examples long.
        """

        lengths = (self.positions - self.starts).clamp(max=self.max_len).cpu().numpy()

        def one_pass(pass_index: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            for index in batch_order(lengths, batch_size, seed, pass_index):
                yield self.gather(torch.as_tensor(index, device=self.items.device))

        return one_pass


class SeededGenerator:
    """A ``torch.Generator`` made on first use on the device asked for, seeded once.

    Masking and negative sampling draw from it, so a model's training is reproducible for
    its seed on whichever device it runs; :meth:`reset` restarts the stream.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._generator: torch.Generator | None = None

    def on(self, device: torch.device) -> torch.Generator:
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device).manual_seed(self.seed)
        return self._generator

    def reset(self) -> None:
        self._generator = None


def sample_negatives(
    shape: tuple[int, ...], n_items: int, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """Uniform negatives over the real items ``0..n_items-1`` (never padding or mask ids)."""
    drawn = torch.randint(0, n_items, shape, generator=generator, device=generator.device)
    return drawn.to(device)
