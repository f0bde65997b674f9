"""Every kind of bad raw file gets a clear answer (README, "Running on the competition's files").

Each case writes one small raw file into a temporary raw folder and loads it through the
catalog entries of ``conf/base/catalog.yml`` (dataset type, ``load_args`` and the
``validator:``), as ``kedro run --params=raw_dir=...`` would. A case either stops with a
message naming the file (and column, first bad row and line where there is one) or is
handled as its case below says (README, "Running on the competition's files", sums them up);
none silently changes what the pipeline sees.
"""

from __future__ import annotations

import codecs
from pathlib import Path

import pandas as pd
import pytest
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog

from movie_rec.parameters import PreprocessingSettings
from movie_rec.pipelines.data_processing import nodes as dp
from tests.conftest import REPO_ROOT, TEST_SPLIT

DATASETS = {
    "train_ratings.csv": "raw_ratings",
    "titles.tsv": "raw_titles",
    "years.tsv": "raw_years",
    "directors.tsv": "raw_directors",
    "writers.tsv": "raw_writers",
    "genres.tsv": "raw_genres",
}
RATINGS = "user,item,time\n1,10,1100000000\n1,11,1100000100\n2,10,1100000200\n"
RATINGS_READ = {
    "user": [1, 1, 2],
    "item": [10, 11, 10],
    "time": [1100000000, 1100000100, 1100000200],
}


def load(raw_dir: Path, name: str) -> pd.DataFrame:
    """Load one raw file through the project's catalog entry, with ``raw_dir`` as the folder."""
    loader = OmegaConfigLoader(
        conf_source=str(REPO_ROOT / "conf"),
        base_env="base",
        default_run_env="base",
        runtime_params={"raw_dir": str(raw_dir)},
    )
    entry = loader["catalog"][DATASETS[name]]
    return DataCatalog.from_config({DATASETS[name]: entry}).load(DATASETS[name])


def write(raw_dir: Path, name: str, content: str | bytes) -> Path:
    path = raw_dir / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


# case → (file, content, fragments the message must hold besides the file's path)
STOPS = {
    "UTF-16 file": ("train_ratings.csv", RATINGS.encode("utf-16"), ["UTF-16", "save it as UTF-8"]),
    "UTF-16 without byte-order mark": ("train_ratings.csv", RATINGS.encode("utf-16-le"), ["NUL bytes", "UTF-8"]),
    "Latin-1 title": ("titles.tsv", "item\ttitle\n10\tHeat (1995)\n11\tAmélie (2001)\n".encode("latin-1"), ["line 3", "not UTF-8"]),
    "0-byte ratings": ("train_ratings.csv", b"", ["empty (0 bytes)"]),
    "0-byte side file": ("genres.tsv", b"", ["empty (0 bytes)"]),
    "header only ratings": ("train_ratings.csv", "user,item,time\n", ["header but no rows"]),
    "a row with an extra value": ("train_ratings.csv", RATINGS + "2,11,1100000300,5\n", ["line 5", "more fields than the header"]),
    "extra value after trailing delimiters": ("train_ratings.csv", "user,item,time\n1,10,1100000000,\n1,11,1100000100,5\n", ["line 3", "more fields"]),
    "id 12.5": ("train_ratings.csv", RATINGS + "2,12.5,1100000300\n", ["column 'item'", "row 3 (line 5)", "not an integer (value 12.5)"]),
    "negative time": ("train_ratings.csv", RATINGS + "2,11,-5\n", ["column 'time'", "row 3 (line 5)", "negative time"]),
    "time in milliseconds": ("train_ratings.csv", RATINGS + "2,11,1100000300000\n", ["column 'time'", "row 3 (line 5)", "after now"]),
    "far-future time": ("train_ratings.csv", RATINGS + "2,11,4102444800\n", ["column 'time'", "row 3 (line 5)", "after now"]),
    "non-numeric time": ("train_ratings.csv", RATINGS + "2,11,2015-01-01\n", ["column 'time'", "row 3 (line 5)", "not an integer (value '2015-01-01')"]),
    "header repeated inside": ("train_ratings.csv", RATINGS + RATINGS, ["column 'user'", "row 3 (line 5)", "repeated header line"]),
    "empty field mid-file": ("train_ratings.csv", "user,item,time\n1,10,1100000000\n1,,1100000100\n", ["column 'item'", "row 1 (line 3)", "missing value"]),
    "empty title": ("titles.tsv", "item\ttitle\n10\tHeat (1995)\n11\t\n", ["column 'title'", "row 1 (line 3)", "missing value"]),
    "bad row after a blank line": ("train_ratings.csv", "user,item,time\n1,10,1100000000\n\n1,x,1100000100\n", ["column 'item'", "row 2 (line 4)", "not an integer (value 'x')"]),
    "missing column": ("train_ratings.csv", "user,item\n1,10\n", ["missing column 'time'", "columns found: 'user', 'item'"]),
    "missing side column": ("genres.tsv", "item\n10\n", ["missing column 'genre'"]),
    "tab-separated csv": ("train_ratings.csv", RATINGS.replace(",", "\t"), ["missing column 'user'", "separated by another character"]),
    "one tab-separated row in the csv": ("train_ratings.csv", RATINGS + "2\t11\t1100000300\n", ["column 'user'", "row 3 (line 5)", "not an integer"]),
    "comma-separated tsv": ("years.tsv", "item,year\n10,1995\n", ["missing column 'item'", "separated by another character"]),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(STOPS))
def test_a_bad_file_stops_naming_file_column_and_row(tmp_path, case):
    name, content, fragments = STOPS[case]
    path = write(tmp_path, name, content)
    with pytest.raises(Exception) as caught:
        load(tmp_path, name)
    message = str(caught.value)
    assert str(path) in message, message
    for fragment in fragments:
        assert fragment in message, message


BOM = codecs.BOM_UTF8

# case → (file, content, what loading it gives)
HANDLED = {
    "UTF-8 byte-order mark": ("train_ratings.csv", BOM + RATINGS.encode(), RATINGS_READ),
    "CRLF line ends": ("train_ratings.csv", RATINGS.replace("\n", "\r\n"), RATINGS_READ),
    "byte-order mark and CRLF in a tsv": ("titles.tsv", BOM + b"item\ttitle\r\n10\tHeat (1995)\r\n", {"item": [10], "title": ["Heat (1995)"]}),
    "trailing delimiter on the rows": ("train_ratings.csv", RATINGS.replace("\n", ",\n").replace("time,", "time"), RATINGS_READ),
    "trailing delimiter on every line": ("train_ratings.csv", RATINGS.replace("\n", ",\n"), RATINGS_READ),
    "ids written as 12.0": ("train_ratings.csv", RATINGS.replace("1,11,", "1.0,11.0,"), RATINGS_READ),
    "blank lines": ("train_ratings.csv", RATINGS.replace("\n1,11", "\n\n1,11") + "\n", RATINGS_READ),
    "whitespace around values and names": ("train_ratings.csv", " user , item,time\n 1 , 10 ,1100000000\n1,11, 1100000100 \n2,10,1100000200\n", RATINGS_READ),
    "whitespace around a director": ("directors.tsv", "item\tdirector\n10\t nm0000229 \n", {"item": [10], "director": ["nm0000229"]}),
    "director id not nm…": ("directors.tsv", "item\tdirector\n10\t12345\n11\tNolan\n", {"item": [10, 11], "director": ["12345", "Nolan"]}),
    "numeric director ids only": ("directors.tsv", "item\tdirector\n10\t12345\n", {"item": [10], "director": ["12345"]}),
    "extra column": ("train_ratings.csv", RATINGS.replace("time\n", "time,rating\n").replace("00\n", "00,4\n"), RATINGS_READ),
    "header-only side file": ("genres.tsv", "item\tgenre\n", {"item": [], "genre": []}),
    "duplicate rows (kept; collapsed later)": ("train_ratings.csv", RATINGS + "1,10,1100000000\n", {k: [*v, v[0]] for k, v in RATINGS_READ.items()}),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(HANDLED))
def test_a_handled_case_reads_as_documented(tmp_path, case):
    name, content, expected = HANDLED[case]
    write(tmp_path, name, content)
    loaded = load(tmp_path, name)
    assert loaded.to_dict("list") == expected
    for column in ("user", "item", "time", "year"):
        if column in loaded:
            assert loaded[column].dtype == "int64"


def _history(user: int, items: range, start: int = 1_100_000_000) -> str:
    return "".join(f"{user},{item},{start + 60 * i}\n" for i, item in enumerate(items))


def test_a_short_history_is_kept_for_training_and_not_held_out(tmp_path):
    long_user, short_user = 1, 2
    min_history = TEST_SPLIT.min_history
    write(
        tmp_path,
        "train_ratings.csv",
        "user,item,time\n"
        + _history(long_user, range(100, 100 + min_history))
        + _history(short_user, range(100, 100 + min_history - 1)),
    )
    ratings = dp.deduplicate_ratings(load(tmp_path, "train_ratings.csv"))
    user_map, item_map = dp.build_id_maps(ratings)
    interactions = dp.index_interactions(ratings, user_map, item_map)
    split_train, answers = dp.split_validation(interactions, TEST_SPLIT)
    short_idx = int(user_map.loc[user_map["user"] == short_user, "user_idx"].iloc[0])
    assert (split_train["user_idx"] == short_idx).sum() == min_history - 1
    assert short_idx not in set(answers["user_idx"])
    assert set(answers["user_idx"]) == {1 - short_idx}


def test_duplicate_rows_collapse_to_the_earliest(tmp_path, caplog):
    write(tmp_path, "train_ratings.csv", RATINGS + "1,10,1100000000\n1,11,1000000000\n")
    ratings = dp.deduplicate_ratings(load(tmp_path, "train_ratings.csv"))
    assert ratings.to_dict("list") == {  # the earliest of each (user, item), in file order
        "user": [1, 2, 1],
        "item": [10, 10, 11],
        "time": [1100000000, 1100000200, 1000000000],
    }
    assert "Dropped 2 duplicate" in caplog.text


def test_movies_missing_from_side_files_are_kept_without_title_year_or_genre(tmp_path, caplog):
    write(tmp_path, "train_ratings.csv", RATINGS + "2,12,1100000300\n")
    write(tmp_path, "titles.tsv", "item\ttitle\n10\tHeat (1995)\n11\tUntitled Project\n")
    write(tmp_path, "years.tsv", "item\tyear\n11\t2003\n")
    write(tmp_path, "directors.tsv", "item\tdirector\n")
    write(tmp_path, "writers.tsv", "item\twriter\n")
    write(tmp_path, "genres.tsv", "item\tgenre\n10\tCrime\n11\tDrama\n")
    raw = {name: load(tmp_path, name) for name in DATASETS}
    ratings = dp.deduplicate_ratings(raw["train_ratings.csv"])
    user_map, item_map = dp.build_id_maps(ratings)
    interactions = dp.index_interactions(ratings, user_map, item_map)
    directors, writers = dp.build_item_people(item_map, raw["directors.tsv"], raw["writers.tsv"])
    options = PreprocessingSettings()  # every step on
    features = dp.build_item_features(
        item_map, interactions, raw["titles.tsv"], raw["years.tsv"], directors, writers,
        raw["genres.tsv"], options,
    ).set_index("item")  # fmt: skip
    assert features["title"].isna().tolist() == [False, False, True]  # 12 has no title
    assert features["year"].tolist()[:2] == [1995, 2003] and pd.isna(features.loc[12, "year"])
    assert features.loc[12, ["genre_Crime", "genre_Drama"]].tolist() == [0, 0]
    assert "1 movies have no title" in caplog.text and "1 movies have no genre" in caplog.text


def test_the_catalog_reads_raw_files_with_the_raw_dataset():
    loader = OmegaConfigLoader(
        conf_source=str(REPO_ROOT / "conf"), base_env="base", default_run_env="base"
    )
    catalog = loader["catalog"]
    types = {catalog[name]["type"] for name in DATASETS.values()}
    assert types == {"movie_rec.datasets.RawCSVDataset"}
