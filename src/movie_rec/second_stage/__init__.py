"""The second stage: a LightGBM ranker over the first-stage models' candidates.

``candidates`` (the candidate union and labels), ``tables`` and ``features`` (what the
ranker reads of each pair), ``ranker`` (training out of fold and scoring) and ``holdouts``
(further holdouts of the validated users, the closed-form first stages refit on each).
Plain numpy, pandas and LightGBM; no Kedro (``pipelines/tabular_rec`` is the glue).
"""
