"""Nodes of the data_processing pipeline (docs/architecture.md §3–4).

Raw ids are mapped to dense ``user_idx``/``item_idx`` once here; every later pipeline works
on dense indices and the submission maps them back through ``user_map``/``item_map``.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd
import scipy.sparse as sp

from movie_rec.parameters import PreprocessingSettings
from movie_rec.splits import SplitSettings, history_matrix, holdout_split

logger = logging.getLogger(__name__)

YEAR_IN_TITLE = re.compile(r"\((\d{4})(?:\s*[-–]\s*\d{0,4})?\)\s*$")


def deduplicate_ratings(raw_ratings: pd.DataFrame) -> pd.DataFrame:
    """Collapse repeated (user, item) rows to the earliest one, logging how many went."""
    ordered = raw_ratings[["user", "item", "time"]].sort_values("time", kind="stable")
    ratings = ordered.drop_duplicates(["user", "item"], keep="first").sort_index()
    dropped = len(raw_ratings) - len(ratings)
    if dropped:
        logger.warning("Dropped %d duplicate (user, item) rows, keeping the earliest", dropped)
    return ratings.reset_index(drop=True)


def build_id_maps(ratings: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Dense indices for the users and the movies that have interactions, in raw-id order."""
    users = np.sort(ratings["user"].unique())
    items = np.sort(ratings["item"].unique())
    user_map = pd.DataFrame({"user_idx": np.arange(len(users), dtype=np.int64), "user": users})
    item_map = pd.DataFrame({"item_idx": np.arange(len(items), dtype=np.int64), "item": items})
    logger.info("%d users, %d movies, %d interactions", len(users), len(items), len(ratings))
    return user_map, item_map


def _to_index(raw_ids: pd.Series, id_map: pd.DataFrame, raw: str, idx: str) -> np.ndarray:
    """Dense index of each raw id (-1 where the id is not in the map)."""
    lookup = pd.Series(id_map[idx].to_numpy(), index=id_map[raw].to_numpy())
    return raw_ids.map(lookup).fillna(-1).astype(np.int64).to_numpy()


def index_interactions(
    ratings: pd.DataFrame, user_map: pd.DataFrame, item_map: pd.DataFrame
) -> pd.DataFrame:
    """Interactions on dense ids, ordered by user then time (file order breaks ties)."""
    interactions = pd.DataFrame(
        {
            "user_idx": _to_index(ratings["user"], user_map, "user", "user_idx"),
            "item_idx": _to_index(ratings["item"], item_map, "item", "item_idx"),
            "time": ratings["time"].to_numpy(dtype=np.int64),
        }
    )
    return interactions.sort_values(["user_idx", "time"], kind="stable").reset_index(drop=True)


def year_from_title(titles: pd.Series) -> pd.Series:
    """The year a title ends with, as in ``"Heat (1995)"``; <NA> where there is none."""
    found = titles.astype("string").str.extract(YEAR_IN_TITLE, expand=False)
    return pd.to_numeric(found, errors="coerce").astype("Int64")


def representative_person(
    people: pd.DataFrame, column: str, item_popularity: pd.Series
) -> pd.Series:
    """Per movie, the one of its people whose movies have the most interactions in total.

    Ties go to the smallest id, so the choice is deterministic.

    Args:
        people: ``item_idx`` and ``column`` (e.g. director), several rows per movie.
        column: the person column.
        item_popularity: interactions per ``item_idx``.
    """
    if people.empty:
        return pd.Series(dtype="string", name=column)
    rows = people.assign(_pop=people["item_idx"].map(item_popularity).fillna(0))
    person_weight = rows.groupby(column)["_pop"].sum()
    rows = rows.assign(_weight=rows[column].map(person_weight))
    best = rows.sort_values(
        ["item_idx", "_weight", column], ascending=[True, False, True], kind="stable"
    ).drop_duplicates("item_idx")
    return best.set_index("item_idx")[column].astype("string")


def _on_dense_items(table: pd.DataFrame, item_map: pd.DataFrame, name: str) -> pd.DataFrame:
    """A side table keyed by ``item_idx``; rows for movies without interactions are dropped."""
    item_idx = _to_index(table["item"], item_map, "item", "item_idx")
    unknown = int((item_idx < 0).sum())
    if unknown:
        logger.info("%s: %d rows name movies without interactions; ignored", name, unknown)
    return table.assign(item_idx=item_idx).loc[item_idx >= 0].drop(columns="item")


def build_item_people(
    item_map: pd.DataFrame, directors: pd.DataFrame, writers: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every director and every writer of each movie: ``item_directors``, ``item_writers``
    (``item_idx``, person), the full multi-valued lists."""
    item_directors = _on_dense_items(directors, item_map, "directors.tsv").drop_duplicates()
    item_writers = _on_dense_items(writers, item_map, "writers.tsv").drop_duplicates()
    return (
        item_directors[["item_idx", "director"]].reset_index(drop=True),
        item_writers[["item_idx", "writer"]].reset_index(drop=True),
    )


def build_item_features(
    item_map: pd.DataFrame,
    counted_interactions: pd.DataFrame,
    titles: pd.DataFrame,
    years: pd.DataFrame,
    item_directors: pd.DataFrame,
    item_writers: pd.DataFrame,
    genres: pd.DataFrame,
    steps: PreprocessingSettings,
) -> pd.DataFrame:
    """One row per movie of ``item_map`` with title, year, representative people, genres.

    ``steps`` (``data_processing.preprocessing``): ``fill_year_from_title``,
    ``representative_people`` and ``genres_one_hot`` switch the seed study's three steps.
    The representative people are chosen by their movies' interactions in
    ``counted_interactions``; the pipeline passes ``split_train``, so that no validation
    answer shapes a feature that the validation fits see.
    """
    features = item_map.copy()
    title_rows = _on_dense_items(titles, item_map, "titles.tsv").drop_duplicates("item_idx")
    features["title"] = features["item_idx"].map(title_rows.set_index("item_idx")["title"])
    features["title"] = features["title"].astype("string")
    untitled = int(features["title"].isna().sum())
    if untitled:
        logger.warning("%d movies have no title in titles.tsv; kept without one", untitled)

    year_rows = _on_dense_items(years, item_map, "years.tsv").drop_duplicates("item_idx")
    year = features["item_idx"].map(year_rows.set_index("item_idx")["year"]).astype("Int64")
    if steps.fill_year_from_title:
        from_title = year_from_title(features["title"].fillna(""))
        filled = int((year.isna() & from_title.notna()).sum())
        year = year.fillna(from_title)
        logger.info("Filled %d missing years from titles", filled)
    features["year"] = year
    if features["year"].isna().any():
        logger.warning("%d movies have no year", int(features["year"].isna().sum()))

    features["n_directors"] = features["item_idx"].map(item_directors.groupby("item_idx").size())
    features["n_writers"] = features["item_idx"].map(item_writers.groupby("item_idx").size())
    features[["n_directors", "n_writers"]] = (
        features[["n_directors", "n_writers"]].fillna(0).astype(np.int64)
    )

    if steps.representative_people:
        popularity = counted_interactions.groupby("item_idx").size()
        for people, column in ((item_directors, "director"), (item_writers, "writer")):
            chosen = representative_person(people, column, popularity)
            features[column] = features["item_idx"].map(chosen).astype("string")

    if steps.genres_one_hot:
        genre_rows = _on_dense_items(genres, item_map, "genres.tsv").drop_duplicates()
        one_hot = pd.crosstab(genre_rows["item_idx"], genre_rows["genre"]).clip(upper=1)
        one_hot = one_hot.reindex(features["item_idx"], fill_value=0)
        one_hot.columns = [f"genre_{name}" for name in one_hot.columns]
        genreless = int((one_hot.sum(axis=1) == 0).sum())
        if genreless:
            logger.warning("%d movies have no genre in genres.tsv; kept with none", genreless)
        features = pd.concat([features, one_hot.reset_index(drop=True).astype(np.int8)], axis=1)
    return features


def split_validation(
    interactions: pd.DataFrame, settings: SplitSettings
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out, per eligible user, the last ``n_last`` items and ``n_random`` earlier ones
    (:class:`movie_rec.splits.SplitSettings`; docs/architecture.md §4: it mirrors the
    hidden test).

    Returns:
        ``split_train`` (the kept interactions, same columns and order) and
        ``valid_answers`` (``user_idx, item_idx, kind`` with kind ``last``/``random``).
    """
    split_train, answers = holdout_split(interactions, settings)
    kinds = answers["kind"].value_counts()
    logger.info(
        "Validation split: answers held out for %d of %d users (split.max_users %s); "
        "%d last + %d random items",
        answers["user_idx"].nunique(),
        int(interactions["user_idx"].nunique()),
        settings.max_users,
        int(kinds.get("last", 0)),
        int(kinds.get("random", 0)),
    )
    return split_train, answers


def interaction_matrix(
    interactions: pd.DataFrame, user_map: pd.DataFrame, item_map: pd.DataFrame
) -> sp.csr_matrix:
    """Binary users × items CSR matrix (float32) over the full id space of the maps."""
    return history_matrix(interactions, (len(user_map), len(item_map)))
