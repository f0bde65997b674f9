"""Does the synthetic data tell a sequential model from a bag-of-items one, as real data does?

On the real MovieLens histories a decayed item-to-item transition model from a user's last
3 items beats EASE on the held-out LAST items by about a third, while EASE recalls the
RANDOMLY dropped items about 4x better. This script prints, per preset, the same two
comparisons on the project's validation split (n_last 4, n_random 6, min_history 16,
seed 42) plus the shape of the data: the transition model
(``Markov(MarkovConfig(k=3, lags=3, lag_decay=0.5, recency_decay=0.7))``) and EASE (λ the
best of a small grid on overall validation Recall@10) on last and random, their ratios,
most-popular, the share of users who watched the most-watched movie, how many watched the
least-watched one, history lengths and the time range. Targets: transition / EASE on last
≥ 1.25, EASE / transition on random ≥ 3, most-watched share 55–70%.

    python benchmarks/bench_sample_order.py                              # sample and competition
    python benchmarks/bench_sample_order.py --presets sample --seed 7
    python benchmarks/bench_sample_order.py --presets competition --regenerate

The sample is generated in memory; the competition preset is cached under
``data/benchmarks/competition`` (``--regenerate`` rebuilds it with ``--seed``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from common import RAW_FILES, cached_preset
from movie_rec.evaluation import recall_at_k, top_k_unseen
from movie_rec.models.baselines import MostPopular, PopularConfig
from movie_rec.models.ease import EASE, EASEConfig
from movie_rec.models.markov import Markov, MarkovConfig
from movie_rec.models.protocol import TrainingData, fitted
from movie_rec.models.sequences import user_sequences
from movie_rec.pipelines.data_processing import nodes as dp
from movie_rec.splits import SplitSettings
from movie_rec.synthetic import generate

SPLIT = SplitSettings(n_last=4, n_random=6, min_history=16, seed=42)
EASE_LAMBDAS = (50.0, 100.0, 200.0, 400.0, 800.0)
TRANSITION = MarkovConfig(k=3, lags=3, lag_decay=0.5, recency_decay=0.7)


def read_raw(folder) -> dict[str, pd.DataFrame]:
    """The six raw tables of a folder, read as the project's catalog reads them."""
    tables = {"train_ratings.csv": pd.read_csv(folder / "train_ratings.csv")}
    for name in RAW_FILES[1:]:
        tables[name] = pd.read_csv(
            folder / name, sep="\t", quoting=3, keep_default_na=False, na_values=[""]
        )
    return tables


def validation_data(ratings: pd.DataFrame) -> dict:
    """The data_processing outputs the comparison needs, computed in memory."""
    ratings = dp.deduplicate_ratings(ratings)
    user_map, item_map = dp.build_id_maps(ratings)
    interactions = dp.index_interactions(ratings, user_map, item_map)
    split_train, answers = dp.split_validation(interactions, SPLIT)
    return {
        "interactions": interactions,
        "split_train": split_train,
        "answers": answers,
        "matrix": dp.interaction_matrix(split_train, user_map, item_map),
    }


def recall(score_fn, data: dict) -> dict[str, float]:
    users = data["answers"]["user_idx"].unique()
    return recall_at_k(top_k_unseen(score_fn, data["matrix"], 10, users=users), data["answers"])


def best_ease(data: dict) -> tuple[float, dict[str, float]]:
    """EASE with the λ of ``EASE_LAMBDAS`` that scores best overall, and its recall."""
    training = TrainingData(data["matrix"])  # one Gram matrix for every λ
    results = {
        lam: recall(fitted(EASE(EASEConfig(lam=lam)), training).score, data) for lam in EASE_LAMBDAS
    }
    lam = max(results, key=lambda value: results[value]["recall@10"])
    return lam, results[lam]


def order_figures(tables: dict[str, pd.DataFrame]) -> dict[str, float]:
    """Transition model vs EASE on last and random items, and the shape of the ratings."""
    ratings = tables["train_ratings.csv"]
    data = validation_data(ratings)
    matrix = data["matrix"]
    sequences = user_sequences(data["split_train"], matrix.shape[0])
    transition = recall(
        fitted(Markov(TRANSITION), TrainingData.of_sequences(sequences, matrix.shape[1])).score,
        data,
    )
    lam, ease = best_ease(data)
    popular = recall(fitted(MostPopular(PopularConfig()), TrainingData(matrix)).score, data)
    history = ratings.groupby("user").size()
    watchers = ratings.groupby("item")["user"].nunique()
    return {
        "transition last": transition["recall@10_last"],
        "EASE last": ease["recall@10_last"],
        "transition / EASE last": transition["recall@10_last"] / ease["recall@10_last"],
        "transition random": transition["recall@10_random"],
        "EASE random": ease["recall@10_random"],
        "EASE / transition random": ease["recall@10_random"] / transition["recall@10_random"],
        "EASE overall": ease["recall@10"],
        "EASE λ": lam,
        "popular overall": popular["recall@10"],
        "popular last": popular["recall@10_last"],
        "most-watched share": watchers.max() / len(history),
        "least-watched users": watchers.min(),
        "history min": history.min(),
        "history mean": history.mean(),
        "history max": history.max(),
        "first watch": pd.to_datetime(ratings["time"].min(), unit="s").date(),
        "last watch": pd.to_datetime(ratings["time"].max(), unit="s").date(),
    }


def preset_tables(preset: str, seed: int, regenerate: bool) -> dict[str, pd.DataFrame]:
    if preset == "competition":
        return read_raw(cached_preset("competition", regenerate=regenerate, seed=seed))
    started = time.perf_counter()
    tables = generate(preset, seed=seed)
    print(f"generated the {preset} preset in {time.perf_counter() - started:.1f} s")
    return tables


def format_value(value) -> str:
    if isinstance(value, float | np.floating):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int | np.integer) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["sample", "competition"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--regenerate", action="store_true", help="regenerate the cached data")
    args = parser.parse_args()
    columns = {}
    for preset in args.presets:
        started = time.perf_counter()
        columns[preset] = order_figures(preset_tables(preset, args.seed, args.regenerate))
        print(f"measured the {preset} preset in {time.perf_counter() - started:.1f} s")
    table = pd.DataFrame(
        {preset: map(format_value, figures.values()) for preset, figures in columns.items()}
    )
    table.index = list(next(iter(columns.values())))
    print(table.to_string())


if __name__ == "__main__":
    main()
