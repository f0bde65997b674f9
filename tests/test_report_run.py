"""The report of a real run (every model, tiny preset) shows every table it reads, with the
columns it reads, and what each candidate source adds."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from movie_rec import records
from movie_rec.registry import first_stage_models
from movie_rec.report import page
from movie_rec.second_stage.candidates import POPULAR_SOURCE

REPORTS = "data/08_reporting"
# The tables render_report reads (pipelines/reporting/pipeline.py), by file, with their schemas.
PAGE_TABLES = {
    "metrics.csv": records.METRICS,
    "recall_by_mix.csv": records.RECALL_BY_MIX,
    "release_filter_ablation.csv": records.RELEASE_FILTER,
    "candidate_ceiling.csv": records.CANDIDATE_CEILING,
    "recall_by_activity.csv": records.RECALL_BY_ACTIVITY,
    "example_users.csv": records.EXAMPLE_USERS,
    "example_users_valid.csv": records.EXAMPLE_USERS,
}
LAYOUTS = {
    "metrics.csv": [page.METRICS_LAYOUT, page.COST_LAYOUT],
    "release_filter_ablation.csv": [page.RELEASE_FILTER_LAYOUT],
    "candidate_ceiling.csv": [page.CEILING_LAYOUT],
    "example_users_valid.csv": [(("", columns),) for columns in page.EXAMPLE_COLUMNS.values()],
}


def section(text: str, heading: str) -> str:
    return text.split(f"<h2>{heading}</h2>", 1)[1].split("<h2>", 1)[0]


@pytest.mark.slow
def test_every_table_the_page_reads_exists_with_the_columns_it_reads(tiny_run):
    for name, schema in PAGE_TABLES.items():
        table = pd.read_csv(tiny_run / REPORTS / name)
        assert not table.empty, name
        records.checked(schema, table)
        for layout in LAYOUTS.get(name, []):
            read = {column for _, columns in layout for column, _ in columns}
            assert read <= set(table.columns), (name, read - set(table.columns))
    text = (tiny_run / REPORTS / "report.html").read_text()
    assert "Not available" not in text


@pytest.mark.slow
def test_the_candidate_ceiling_shows_what_each_source_adds(tiny_run):
    ranker = records.ModelMetrics.from_json(
        json.loads((tiny_run / REPORTS / "lgbm_ranker_metrics.json").read_text())
    ).ranker
    assert ranker is not None
    recorded = pd.DataFrame(ranker.candidate_recall_by_source)
    sources = [*first_stage_models(), POPULAR_SOURCE]
    assert recorded["source"].tolist() == [*sources, "union"]
    table = pd.read_csv(tiny_run / REPORTS / "candidate_ceiling.csv").set_index("source")
    assert table.loc[sources, ["adds", "adds_last", "adds_random"]].notna().all(axis=None)
    assert table.loc[sources, "adds"].sum() > 0  # some answer is held by one source only

    ceiling = section(
        (tiny_run / REPORTS / "report.html").read_text(), "Candidate ceiling per source"
    )
    for source in sources:
        row = re.search(rf"<tr><td[^>]*>{source}</td>(.*?)</tr>", ceiling)
        assert row, source
        shown = re.findall(r"<td[^>]*>([^<]*)</td>", row.group(1))
        adds = [
            f"{table.loc[source, column]:.4f}" for column in ("adds", "adds_last", "adds_random")
        ]
        assert shown[3:6] == adds, source
