"""Loading a data set, inferring its task, and splitting it into train / validation / test."""

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn import datasets
from sklearn.model_selection import train_test_split

from ...core.errors import DataLoadError
from ...core.settings import BUNDLED_DATASETS, DataSettings
from ...core.spec import Task
from ...models.preprocessing import MIN_CATEGORY_COUNT
from ...models.schema import MISSING_CATEGORY, DataSchema, column_kind, infer_schema, whole_numbers
from .tables import check_task, infer_task, missing_column, read_table

log = logging.getLogger(__name__)

BUNDLED_LOADERS = {
    "breast_cancer": datasets.load_breast_cancer,
    "wine": datasets.load_wine,
    "diabetes": datasets.load_diabetes,
}
# A number that pandas leaves as text: digits grouped by , . ' or space (12,345.6), or with a decimal comma (1,5).
SEPARATED_NUMBER = r"[+-]?\d{1,3}(?:[,.' ]\d{3})+(?:[.,]\d+)?|[+-]?\d+,\d+"
PLAIN_NUMBER = r"[+-]?\d+(?:\.\d+)?"
# The digest reads this many rows, as MLflow's own data set digest does (a test holds the two equal).
DIGEST_ROWS = 10_000


@dataclass(frozen=True)
class Dataset:
    """A loaded table with its target column and task."""

    name: str
    source: str
    frame: pd.DataFrame
    target: str
    task: Task

    @property
    def features(self) -> pd.DataFrame:
        return self.frame.drop(columns=[self.target])


@dataclass(frozen=True)
class Split:
    """Train, validation and test rows (raw features and target)."""

    train_features: pd.DataFrame
    train_target: pd.Series
    validation_features: pd.DataFrame
    validation_target: pd.Series
    test_features: pd.DataFrame
    test_target: pd.Series

    def sizes(self) -> dict[str, int]:
        return {
            "train_rows": len(self.train_target),
            "validation_rows": len(self.validation_target),
            "test_rows": len(self.test_target),
        }


TRAINING_ROWS_ARTIFACT = "training_rows.npz"  # a version's training rows, as row digests (data, no code)


def row_digests(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """One 64-bit digest per row of `columns` (in that order), the same whichever way a table was read: a column
    whose values all read as numbers is hashed as float64 (1 and 1.0 agree), any other as text, a blank as a blank.
    Rows served and labelled later, or read from another copy of the file, digest as the training rows did."""
    canonical = {}
    for name in columns:
        values = frame[name] if name in frame.columns else pd.Series(np.nan, index=frame.index)
        numbers = pd.to_numeric(values, errors="coerce") if not pd.api.types.is_bool_dtype(values) else None
        if numbers is not None and numbers.notna().sum() == values.notna().sum():
            canonical[name] = numbers.astype("float64")
        else:
            canonical[name] = (
                values.astype(object)
                .where(values.notna(), None)
                .map(lambda value: "\x00blank" if value is None else str(value))
            )
    table = pd.DataFrame(canonical, index=frame.index)
    return pd.util.hash_pandas_object(table, index=False).to_numpy(dtype="uint64")


def labelled_row_digests(schema: DataSchema, features: pd.DataFrame, target: pd.Series) -> np.ndarray:
    """The digests of rows as a model learns or is judged on them: their features (in name order) and target."""
    columns = [*sorted(column.name for column in schema.features), schema.target.name]
    return row_digests(features.assign(**{schema.target.name: target.to_numpy()}), columns)


def training_row_digests(schema: DataSchema, split: Split) -> np.ndarray:
    """The digests of every row a version learned from (training and validation rows: features and target)."""
    learned = [
        labelled_row_digests(schema, split.train_features, split.train_target),
        labelled_row_digests(schema, split.validation_features, split.validation_target),
    ]
    return np.unique(np.concatenate(learned))


def load_bundled(name: str) -> tuple[pd.DataFrame, str]:
    """One of scikit-learn's bundled data sets as a frame, and its target column name."""
    if name not in BUNDLED_LOADERS:
        raise DataLoadError(f"unknown data set {name!r}; choose one of {', '.join(BUNDLED_DATASETS)}")
    bunch = BUNDLED_LOADERS[name](as_frame=True)
    return bunch.frame, "target"


def numbers_as_text(values: pd.Series, sample: int = 10_000) -> str | None:
    """An example value if a text column holds numbers written with separators (12,345 or 1,5), else None."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return None
    text = values.dropna().head(sample).astype(str).str.strip()
    separated = text[text.str.fullmatch(SEPARATED_NUMBER)]
    numbers = text.str.fullmatch(f"{SEPARATED_NUMBER}|{PLAIN_NUMBER}")
    if separated.empty or numbers.sum() < 0.9 * len(text):
        return None
    return str(separated.iloc[0])


def load_dataset(settings: DataSettings) -> Dataset:
    """Load the configured data set, check its target column and settle the task."""
    if settings.path is not None:
        path = settings.path.expanduser()
        frame = read_table(path, settings.delimiter, settings.decimal, settings.thousands)
        target, source = str(settings.target).strip(), str(path.resolve())
        if target not in frame.columns:
            raise missing_column("target column", target, [str(name) for name in frame.columns], path)
        for name in frame.columns:
            if (example := numbers_as_text(frame[name])) is not None:
                log.warning(
                    "column %r holds numbers written as text (e.g. %r), so they are read as categories; if they are "
                    "numbers, say how they are written: --thousands , for 12,345 or --decimal , for 1,5 "
                    "(data.thousands, data.decimal)",
                    name,
                    example,
                )
    else:
        frame, target = load_bundled(settings.dataset)
        if settings.target and settings.target != target:
            raise DataLoadError(
                f"bundled data set {settings.dataset!r} has target column 'target', not {settings.target!r}"
            )
        source = f"sklearn.datasets.load_{settings.dataset}"
    frame.columns = [str(column) for column in frame.columns]
    unlabeled = int(frame[target].isna().sum())
    if unlabeled:
        log.warning("dropping %d row(s) with no value in target column %r", unlabeled, target)
        frame = frame[frame[target].notna()].reset_index(drop=True)
    if frame.shape[1] < 2:
        raise DataLoadError(f"{source} has only the target column; there are no features to learn from")
    task = infer_task(frame[target]) if settings.task == "auto" else settings.task
    check_task(frame[target], task)
    log.info("loaded %s: %d rows, %d features, task %s", source, len(frame), frame.shape[1] - 1, task)
    return Dataset(settings.name, source, frame, target, task)


def frame_digest(frame: pd.DataFrame) -> str:
    """A short fingerprint of a table, equal to MLflow's data set digest (its first rows' values, the row count, the
    column names), but deciding which columns hold text on those rows too: MLflow checks every cell, ~10 s on a
    million rows."""
    head = frame.head(DIGEST_ROWS)
    text_columns = head.columns[(head.map(type) == str).all(0)]  # noqa: E721  (cell by cell, as MLflow does)
    numeric_columns = head.select_dtypes(include=[np.number]).columns
    hashed = pd.util.hash_pandas_object(head[text_columns.union(numeric_columns)]).values
    digest = hashlib.md5(usedforsecurity=False)
    for part in (hashed, np.int64(len(frame)), *(str(name).encode() for name in frame.columns)):
        digest.update(part)
    return digest.hexdigest()[:8]


def split_data(dataset: Dataset, test_size: float, validation_size: float, seed: int) -> Split:
    """Seeded train / validation / test split, stratified by class for classification."""
    features, target = dataset.features, dataset.frame[dataset.target]
    stratify = target if dataset.task != "regression" else None
    try:
        rest_x, test_x, rest_y, test_y = train_test_split(
            features, target, test_size=test_size, random_state=seed, stratify=stratify
        )
        train_x, val_x, train_y, val_y = train_test_split(
            rest_x,
            rest_y,
            test_size=validation_size,
            random_state=seed,
            stratify=rest_y if stratify is not None else None,
        )
    except ValueError as error:
        raise DataLoadError(
            f"cannot split {len(target)} rows into train/validation/test ({error}); "
            "provide more rows, or lower --test-size / --validation-size"
        ) from None
    return Split(train_x, train_y, val_x, val_y, test_x, test_y)


# Below this many rows, every value being distinct says little: small tables are often all-distinct by chance.
ID_MIN_ROWS = 50


def shown_value(value: Any) -> str:
    """A cell as a person would write it: 0 rather than np.float64(0.0), text in quotes."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return repr(value) if isinstance(value, str) else str(value)


def unlearnable_reason(values: pd.Series) -> str | None:
    """Why a feature column cannot teach the network anything, or None if it can. Dates are never ID-like: a
    different day in every row still says which season, weekday and year it is."""
    distinct = values.nunique(dropna=True)
    if distinct == 0:
        return "empty: every value is missing"
    if distinct == 1:
        missing = int(values.isna().sum())
        also = f" ({missing} missing)" if missing else ""
        return f"constant: every row holds {shown_value(values.dropna().iloc[0])}{also}"
    floats = pd.api.types.is_float_dtype(values) and not whole_numbers(values)
    if len(values) >= ID_MIN_ROWS and distinct == len(values) and not floats and column_kind(values) != "datetime":
        return "ID-like: a different value in every row, so it identifies rows rather than describing them"
    return None


def drop_unlearnable_columns(dataset: Dataset) -> tuple[Dataset, dict[str, str]]:
    """Drop constant and ID-like feature columns; returns the data without them and why each was dropped."""
    dropped = {
        name: reason
        for name in dataset.frame.columns
        if name != dataset.target and (reason := unlearnable_reason(dataset.frame[name])) is not None
    }
    for name, reason in dropped.items():
        log.warning("column %r dropped, not learned: %s", name, reason)
    if dropped and len(dropped) == dataset.frame.shape[1] - 1:
        raise DataLoadError(
            f"every feature column of {dataset.source} is constant or ID-like ({', '.join(dropped)}); "
            "there is nothing to learn from"
        )
    frame = dataset.frame.drop(columns=list(dropped))
    return Dataset(dataset.name, dataset.source, frame, dataset.target, dataset.task), dropped


def describe_columns(dataset: Dataset, schema: DataSchema, dropped: dict[str, str]) -> list[dict[str, Any]]:
    """What the pipeline does with each column, in the data's own order: for the run's record and the log."""
    kinds = {column.name: column for column in schema.features}
    rows = []
    for name in [*dataset.frame.columns, *dropped]:
        if name == dataset.target:
            continue
        values = dataset.frame[name] if name in dataset.frame.columns else None
        missing = int(values.isna().sum()) if values is not None else None
        column = kinds.get(name)
        if name in dropped:
            action = f"dropped: {dropped[name]}"
        elif column is None:
            action = "ignored: not in the reference schema"
        elif column.kind == "numeric":
            action = "number: missing values filled with the training median, then standardised"
        elif column.kind == "datetime":
            action = (
                f"date: turned into {len(column.inputs)} numbers ({', '.join(column.parts or ())}), each "
                "standardised; missing dates get the training median of each"
            )
        else:
            count = len(column.categories or ())
            codes = " (integer codes)" if column.kind == "categorical" and column.integer else ""
            action = (
                f"{column.kind}{codes}: {count} distinct value(s) in the data; those seen at least "
                f"{MIN_CATEGORY_COUNT} times in the training rows get a column each, rarer and unseen ones share an "
                "'unknown' column" + ("; a missing value is a category of its own" if column.nullable else "")
            )
        rows.append({"column": name, "kind": column.kind if column else None, "missing": missing, "action": action})
    return rows


def describe_fitted(columns: list[dict[str, Any]], schema: DataSchema, encoder: Any) -> list[dict[str, Any]]:
    """`describe_columns` once the preprocessing is fitted: for each category column, which values got a column of
    their own and how many were pooled into 'unknown' (`encoder` is the fitted `FeatureEncoder`)."""
    kinds = {column.name: column for column in schema.features}
    fitted = dict(
        zip(
            encoder.categorical,
            zip(encoder.positions, encoder.unknown or (None,) * len(encoder.positions), strict=True),
            strict=True,
        )
    )
    described = []
    for row in columns:
        column = kinds.get(row["column"])
        if column is None or row["column"] not in fitted:
            described.append(row)
            continue
        positions, bucket = fitted[row["column"]]
        kept = sorted(
            label for label, position in positions.items() if position != bucket and label != MISSING_CATEGORY
        )
        total = len(column.categories or ())
        shown = ", ".join(map(repr, kept[:10])) + (", …" if len(kept) > 10 else "")
        codes = " (integer codes)" if column.kind == "categorical" and column.integer else ""
        action = f"{column.kind}{codes}: one-hot; {len(kept)} of {total} value(s) get a column of their own ({shown})"
        if bucket is not None:
            action += (
                f"; the other {total - len(kept)} (seen fewer than {MIN_CATEGORY_COUNT} times in the training rows, "
                "or only outside them) and any value never seen share one 'unknown' column"
            )
        else:
            action += "; a value never seen gets no column (all zeros)"
        if MISSING_CATEGORY in positions:
            action += "; a missing value is a category of its own"
        described.append(row | {"action": action, "kept": kept, "pooled": total - len(kept)})
    return described


def learn_schema(
    dataset: Dataset,
    reference: Path | None,
    categorical: tuple[str, ...] | list[str] = (),
    dropped: dict[str, str] | None = None,
) -> DataSchema:
    """The schema to hold the data to: a reference file when given, else learned from this data (the columns
    `drop_unlearnable_columns` took out stay known, as ignored)."""
    if reference is not None:
        return DataSchema.load(reference)
    learned = infer_schema(dataset.frame, dataset.target, dataset.task, categorical)
    return replace(learned, ignored=tuple(dropped or ()))
