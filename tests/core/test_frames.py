"""DataFrames in prompt templates: golden texts written by hand from what each small frame is."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from claudekit._request._frames import FRAME_BUDGET, frame_outline
from claudekit._request._template import PromptFieldError, format_prompt
from claudekit.offline import count_text


def fill(template: str, **ns: object) -> str:
    return format_prompt(template, ns)


@pytest.fixture
def people() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "name": pd.Series(["Ada", None, "Bo"], dtype=object),
            "score": [1.5, None, 3.0],
            "n": [1, 2, 3],
        }
    )


def test_overview_has_shape_dtypes_nulls_and_rows(people: pd.DataFrame) -> None:
    assert fill("{df}", df=people) == (
        "DataFrame: 3 rows × 3 columns\n"
        "  column  dtype            nulls\n"
        "  name    object (string)  1\n"
        "  score   float64          1\n"
        "  n       int64            0\n"
        "all 3 rows:\n"
        "   name  score  n\n"
        "0   Ada    1.5  1\n"
        "1  None    NaN  2\n"
        "2    Bo    3.0  3"
    )


def test_overview_of_a_longer_frame_shows_the_first_five_rows() -> None:
    df = pd.DataFrame({"v": range(100, 108)})
    text = fill("{df}", df=df)
    assert text.startswith("DataFrame: 8 rows × 1 column\n")
    assert text.endswith("first 5 rows:\n     v\n0  100\n1  101\n2  102\n3  103\n4  104")


def test_schema_lists_columns_and_dtypes_only() -> None:
    df = pd.DataFrame(
        {
            "grade": pd.Categorical(["A", "B", "A"], categories=["A", "B", "C"], ordered=True),
            "when": pd.to_datetime(["2025-01-01 00:00", "2025-01-01 01:00", "2025-01-01 02:00"])
            .tz_localize("Europe/Paris")
            .astype("datetime64[ns, Europe/Paris]"),
            "名前": pd.Series(["太郎", "花子", "x"], dtype=object),
            "prix (€)": [1, 2, 3],
        }
    )
    # Wide characters count two columns, so the dtype column lines up on screen.
    assert fill("{df:schema}", df=df) == (
        "DataFrame: 3 rows × 4 columns\n"
        "  column    dtype\n"
        "  grade     category (3, ordered: 'A', 'B', 'C')\n"
        "  when      datetime64[ns, Europe/Paris]\n"
        "  名前      object (string)\n"
        "  prix (€)  int64"
    )


def test_tz_aware_rows_keep_their_offset() -> None:
    when = pd.to_datetime(["2025-07-01 12:00"]).tz_localize("Europe/Paris")
    text = fill("{df:head}", df=pd.DataFrame({"when": when}))
    assert "2025-07-01 12:00:00+02:00" in text  # summer time in Paris is UTC+2


def test_multiindex_rows_and_columns_are_named() -> None:
    df = pd.DataFrame(
        {("sales", "q1"): [1, 2], ("sales", "q2"): [3, 4]},
        index=pd.MultiIndex.from_tuples([("Paris", 2024), ("Lyon", 2025)], names=["city", "year"]),
    )
    df.index = df.index.set_levels(df.index.levels[0].astype(object), level=0)
    assert fill("{df:schema}", df=df) == (
        "DataFrame: 2 rows × 2 columns\n"
        "index: MultiIndex of 2 levels: city (object), year (int64)\n"
        "columns: MultiIndex of 2 levels; labels are tuples\n"
        "  column           dtype\n"
        "  ('sales', 'q1')  int64\n"
        "  ('sales', 'q2')  int64"
    )


def test_head_n_and_index_line() -> None:
    df = pd.DataFrame({"t": [20.5, 21.0, 19.5]}, index=pd.Index(["a", "b", "c"], dtype=object, name="id"))
    assert fill("{df:head=2}", df=df) == (
        "DataFrame: 3 rows × 1 column\n"
        "index: Index id (object)\n"
        "first 2 rows:\n"
        "       t\n"
        "id      \n"
        "a   20.5\n"
        "b   21.0"
    )


def test_describe_gives_summary_statistics() -> None:
    df = pd.DataFrame({"x": [1, 2, 3, 4], "y": [0.5, 0.5, 1.5, 1.5]})
    # mean 2.5, sample std sqrt(5/3) = 1.290994, quartiles by linear interpolation: 1.75, 2.5, 3.25.
    assert fill("{df:describe}", df=df) == (
        "DataFrame: 4 rows × 2 columns\n"
        "summary statistics:\n"
        "              x        y\n"
        "count  4.000000  4.00000\n"
        "mean   2.500000  1.00000\n"
        "std    1.290994  0.57735\n"
        "min    1.000000  0.50000\n"
        "25%    1.750000  0.50000\n"
        "50%    2.500000  1.00000\n"
        "75%    3.250000  1.50000\n"
        "max    4.000000  1.50000"
    )


def test_sample_is_seeded_and_rows_are_the_frames_own() -> None:
    df = pd.DataFrame({"k": [f"row{i}" for i in range(10)], "v": [i * 10 for i in range(10)]})
    first = fill("{df:sample=3}", df=df)
    assert first == fill("{df:sample=3}", df=df.copy())  # same rows on every run
    lines = first.splitlines()
    assert lines[1] == "3 rows sampled at random (seed 0):"
    rows = [line.split() for line in lines[3:]]
    assert len(rows) == 3 and len({r[0] for r in rows}) == 3
    for label, k, v in rows:  # each printed row is that label's row of the frame
        assert k == f"row{label}" and int(v) == int(label) * 10
    assert [int(r[0]) for r in rows] != [0, 1, 2]  # not simply the head


def test_series_renders_as_one_column() -> None:
    s = pd.Series([1.5, None], name="price")
    assert fill("{s:schema}", s=s) == "Series price: 2 rows\n  column  dtype\n  price   float64"


def test_format_specs_still_work_for_other_objects_and_bad_frame_forms_are_clear() -> None:
    assert fill("{x:.2f} {n:>4}", x=3.14159, n=7) == "3.14    7"
    with pytest.raises(PromptFieldError) as info:
        fill("{df:head=ten}", df=pd.DataFrame({"a": [1]}))
    assert "'head=ten' is not a DataFrame form" in str(info.value)
    assert "{df:schema}" in str(info.value)


def test_a_thousand_columns_fit_the_budget_in_every_form() -> None:
    wide = pd.DataFrame(np.arange(3000).reshape(3, 1000), columns=[f"c{i}" for i in range(1000)])
    for spec in ("", ":schema", ":head=20", ":sample=2", ":describe"):
        text = format_prompt("{w" + spec + "}", {"w": wide})
        assert count_text(text) <= FRAME_BUDGET, spec
        assert text.startswith("DataFrame: 3 rows × 1,000 columns"), spec
    overview = fill("{w}", w=wide)
    listed = re.findall(r"^  (c\d+) +int64 +0$", overview, re.M)
    assert listed == [f"c{i}" for i in range(len(listed))] and 10 <= len(listed) < 1000
    assert f"… {1000 - len(listed):,} more columns not listed (int64 ×{1000 - len(listed):,})" in overview
    assert re.search(r"^all 3 rows, \d+ of 1,000 columns:$", overview, re.M)
    assert "c999" in overview.splitlines()[-4]  # the row listing keeps the last columns too
    tight = format_prompt("{w}", {"w": wide}, frame_budget=150)
    assert count_text(tight) <= 150


def test_outline_is_one_line() -> None:
    df = pd.DataFrame({"a": [1], "b": [0.5]})
    assert frame_outline(df) == "DataFrame 1 row × 2 columns: a (int64), b (float64)"


def test_cell_references_are_lookups_with_clear_misses() -> None:
    ns = {"In": ["", "x = 1", "x + 1"], "Out": {2: 2}, "_": 2}
    assert fill("{In[1]} → {Out[2]} (last: {_})", **ns) == "x = 1 → 2 (last: 2)"
    with pytest.raises(PromptFieldError) as info:
        format_prompt("{In[9]}", ns)
    assert "In[9] failed (index out of range: it has 3 items)" in str(info.value)
    with pytest.raises(PromptFieldError) as info:
        format_prompt("{Out[1]}", ns)
    assert "Out[1] failed (no such key; keys: 2)" in str(info.value)
