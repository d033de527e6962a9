"""Reading a table and checking it against what was asked, cheaply: pandas only, so the CLI can do it in a blink
before any server starts or TensorFlow, MLflow, Prefect or Great Expectations load.

The one table reader: training, tuning, retraining, feedback and batch scoring all read files here, whole
(`read_table`) or a chunk at a time (`read_table_chunks`), with the same separator detection, column-name cleaning
and errors."""

import csv
import difflib
import gzip
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd

from ...core.errors import DataLoadError
from ...core.spec import Task
from ...models.schema import whole_numbers

log = logging.getLogger(__name__)

# Numeric targets with at most this many distinct whole values are classes, not quantities.
MAX_CLASSES = 20
DELIMITERS = ",;\t|"
CSV_SUFFIXES = (".csv", ".txt", ".gz")
PARQUET_SUFFIXES = (".parquet", ".pq")


def check_readable(path: Path) -> None:
    """A DataLoadError saying what to do unless `path` is a file of a kind neuroflow reads."""
    if not path.exists():
        raise DataLoadError(f"data file {path} does not exist; check the path passed to --data")
    if path.is_dir():
        raise DataLoadError(f"{path} is a folder; pass a .csv or .parquet file to --data")
    if path.suffix.lower() not in (*CSV_SUFFIXES, *PARQUET_SUFFIXES):
        raise DataLoadError(f"{path}: unsupported file type {path.suffix.lower()!r}; use .csv or .parquet")


def read_table(
    path: Path, delimiter: str | None = None, decimal: str = ".", thousands: str | None = None
) -> pd.DataFrame:
    """Read a CSV or Parquet file, turning every way that can fail into a DataLoadError. A CSV file's column
    separator is detected unless given; `decimal` and `thousands` say how its numbers are written."""
    check_readable(path)
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, sep=separator_of(path, delimiter), decimal=decimal, thousands=thousands)
    except pd.errors.EmptyDataError:
        raise DataLoadError(f"data file {path} is empty; it needs a header row and data rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as error:
        raise DataLoadError(f"could not read {path}: {error}") from None
    if frame.empty:
        raise DataLoadError(f"data file {path} has a header but no data rows")
    frame.columns = clean_column_names(list(frame.columns), path)
    return frame


def read_table_chunks(
    path: Path, chunk_rows: int, delimiter: str | None = None, decimal: str = ".", thousands: str | None = None
) -> Iterator[pd.DataFrame]:
    """A CSV or Parquet file's rows, `chunk_rows` at a time (CSV through pandas, Parquet a row group slice at a
    time), with the columns named as `read_table` names them and its numbers read with the same `decimal` and
    `thousands` marks; memory stays flat however large the file. A file with a header and no rows yields nothing."""
    check_readable(path)
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
                chunk = batch.to_pandas()
                chunk.columns = clean_column_names(list(chunk.columns), path)
                yield chunk
            return
        separator = separator_of(path, delimiter)
        with pd.read_csv(path, sep=separator, decimal=decimal, thousands=thousands, chunksize=chunk_rows) as reader:
            for chunk in reader:
                chunk.columns = clean_column_names(list(chunk.columns), path)
                yield chunk
    except pd.errors.EmptyDataError:
        raise DataLoadError(f"data file {path} is empty; it needs a header row and data rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as error:  # pyarrow's are ValueErrors
        raise DataLoadError(f"could not read {path}: {error}") from None


def separator_of(path: Path, delimiter: str | None) -> str:
    """The column separator to read a CSV file with: the one given, else the detected one (said when not a comma)."""
    separator = delimiter or detect_delimiter(path)
    if separator != ",":
        log.info("reading %s with %r between columns%s", path.name, separator, "" if delimiter else " (detected)")
    return separator


def clean_column_names(columns: Sequence[object], where: object) -> list[str]:
    """Column names as text without surrounding whitespace (`species, island` headers pad them), refusing two that
    become the same name."""
    names = [str(name).strip() for name in columns]
    seen: dict[str, str] = {}
    for original, name in zip(columns, names, strict=True):
        if name in seen:
            raise DataLoadError(
                f"{where} has two columns named {name!r} once surrounding spaces are removed "
                f"({seen[name]!r} and {str(original)!r}); rename one of them"
            )
        seen[name] = str(original)
    return names


def detect_delimiter(path: Path, sample_bytes: int = 65536) -> str:
    """The column separator of a CSV file, from its first lines: one of , ; tab |, or , when it cannot tell."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as file:
        sample = file.read(sample_bytes)
    lines = sample.splitlines()
    if len(lines) > 2 and len(sample) == sample_bytes:
        sample = "\n".join(lines[:-1])  # the last line may be cut in half
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


def infer_task(target: pd.Series) -> Task:
    """Binary for two classes, multiclass for a few labels, regression for continuous numbers."""
    values = target.dropna()
    distinct = values.nunique()
    if distinct < 2:
        raise DataLoadError(f"target column {target.name!r} has {distinct} distinct value(s); it needs at least 2")
    if distinct == 2:
        return "binary"
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        whole = whole_numbers(values)
        return "multiclass" if whole and distinct <= MAX_CLASSES else "regression"
    return "multiclass"


def read_columns(path: Path, delimiter: str | None = None) -> list[str]:
    """The column names of a CSV or Parquet file, from its header alone."""
    check_readable(path)
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            import pyarrow.parquet as parquet

            names = [name for name in parquet.read_schema(path).names if not str(name).startswith("__index_level_")]
        else:
            names = list(pd.read_csv(path, sep=delimiter or detect_delimiter(path), nrows=0).columns)
    except pd.errors.EmptyDataError:
        raise DataLoadError(f"data file {path} is empty; it needs a header row and data rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as error:
        raise DataLoadError(f"could not read {path}: {error}") from None
    return clean_column_names(names, path)


def read_column(
    path: Path, name: str, delimiter: str | None = None, decimal: str = ".", thousands: str | None = None
) -> pd.Series:
    """One column of a CSV or Parquet file (the target, to check it before anything slow starts); `name` as
    `read_columns` gives it, without surrounding whitespace."""
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            import pyarrow.parquet as parquet

            raw = [column for column in parquet.read_schema(path).names if str(column).strip() == name]
            frame = pd.read_parquet(path, columns=raw[:1])
        else:
            separator = delimiter or detect_delimiter(path)
            frame = pd.read_csv(
                path,
                sep=separator,
                decimal=decimal,
                thousands=thousands,
                usecols=lambda column: str(column).strip() == name,
            )
        return frame.iloc[:, 0].rename(name)
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as error:
        raise DataLoadError(f"could not read column {name!r} of {path}: {error}") from None


def closest_column(name: str, columns: Sequence[str]) -> str | None:
    """The column a mistyped name most likely meant: the same but for case or surrounding spaces, or a near spelling."""
    wanted = name.strip().casefold()
    for column in columns:
        if column.strip().casefold() == wanted:
            return column
    close = difflib.get_close_matches(name, list(columns), n=1, cutoff=0.8)
    return close[0] if close else None


def missing_column(kind: str, name: str, columns: Sequence[str], where: object) -> DataLoadError:
    """The error for a column that is not there: a did-you-mean, and the columns quoted so whitespace shows."""
    guess = closest_column(name, columns)
    hint = f" (did you mean {guess!r}?)" if guess is not None else ""
    shown = ", ".join(map(repr, columns[:12])) + (", …" if len(columns) > 12 else "")
    return DataLoadError(f"{kind} {name!r} is not in {where}{hint}; its columns are: {shown}")


def check_task(target: pd.Series, task: Task) -> None:
    """A DataLoadError saying what to pass instead, when a target cannot be the task asked for."""
    values = target.dropna()
    distinct = int(values.nunique())
    examples = ", ".join(map(repr, sorted(map(str, values.unique()))[:5])) + (", …" if distinct > 5 else "")
    name = target.name
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if distinct < 2:
        raise DataLoadError(f"target column {name!r} has {distinct} distinct value(s); it needs at least 2")
    if task == "binary" and distinct != 2:
        raise DataLoadError(
            f"--task binary needs a target with exactly 2 classes, but {name!r} has {distinct} ({examples}); "
            f"pass --task {infer_task(target)}, or leave --task out to have it inferred"
        )
    if task == "multiclass" and distinct < 3:
        raise DataLoadError(
            f"--task multiclass needs a target with at least 3 classes, but {name!r} has 2 ({examples}); "
            "pass --task binary, or leave --task out to have it inferred"
        )
    if task == "regression" and not numeric:
        raise DataLoadError(
            f"target column {name!r} holds text ({examples}), so it cannot be a regression target; "
            f"pass --task {'binary' if distinct == 2 else 'multiclass'}, or leave --task out to have it inferred"
        )
