"""Batch scoring: a CSV or Parquet file through the registered model, every row checked as the service checks a
request, in chunks so that memory stays flat however large the file.

Plain functions (no Prefect, no BentoML): `neuroflow predict` and `scoring_flow` both call `score_file`.
"""

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import TypeAdapter, ValidationError

from ...core.errors import DataLoadError, SchemaMismatchError
from ...core.settings import DataSettings
from ...models.inference import PREDICTION_COLUMN, Predictor
from ...models.requests import RECORD_CONFIG, RequestParser, accepted_range, column_type
from ...models.schema import ColumnSchema, DataSchema, category_label, category_labels
from .tables import PARQUET_SUFFIXES, read_table_chunks

log = logging.getLogger(__name__)

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
VERSION_COLUMN = "model_version"
ROW_COLUMN = "row"
PROBLEMS_COLUMN = "problems"
DEFAULT_CHUNK_ROWS = 100_000
MAX_PROBLEMS_PER_ROW = 5
TRUTH = {"true": True, "false": False}


def file_format(path: Path, what: str) -> str:
    """`csv` or `parquet` from a file's extension; ConfigError-worthy text otherwise (raised as DataLoadError)."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise DataLoadError(f"{what} {path} must end in .csv or .parquet (got {path.suffix or 'no extension'!r})")
    return kind


def rejects_path(output: Path) -> Path:
    """Where rejected rows go unless told: beside the output, `<name>.rejects.csv`."""
    return output.with_name(f"{output.stem}.rejects.csv")


@dataclass(frozen=True)
class ScoringResult:
    """What a scoring run did: rows read, scored and rejected, where they went, and with which model version."""

    rows: int
    scored: int
    rejected: int
    output: Path
    rejects: Path | None
    model_name: str
    model_version: str
    seconds: float
    input_digest: str
    first_problems: list[str] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "scored": self.scored,
            "rejected": self.rejected,
            "output": str(self.output),
            "rejects": str(self.rejects) if self.rejects else None,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second, 1),
            "input_digest": self.input_digest,
        }


class RowChecker:
    """The service's request checks, applied a column at a time to a chunk of a file: the same types, ranges and
    categories (`neuroflow.models.requests.column_type`), and the same wording for what is wrong."""

    def __init__(self, parser: RequestParser) -> None:
        self.parser = parser
        self.schema: DataSchema = parser.schema
        self.adapters: dict[str, TypeAdapter[Any]] = {}
        for column in self.schema.features:
            values: Any = list[column_type(column, parser.unknown_categories, parser.range_multiple)]  # type: ignore[misc]
            self.adapters[column.name] = TypeAdapter(values, config=RECORD_CONFIG)

    def missing_columns(self, columns: list[str]) -> list[str]:
        """Feature columns the file lacks (every row would fail: the whole file is refused)."""
        return [name for name in self.schema.feature_names if name not in columns]

    def problems(self, frame: pd.DataFrame) -> dict[int, list[str]]:
        """Position in `frame` → what is wrong with that row, for the rows the service would refuse.

        A vectorised look (`suspects`) first flags every row that might fail; only those go through the service's
        own validators, which decide and word the problem. A row not flagged passes those validators by construction
        (a unit test compares the two on messy files)."""
        found: dict[int, list[str]] = {}
        for column in self.schema.features:
            suspect = self.suspects(frame[column.name], column)
            if suspect is not None and not suspect.any():
                continue
            positions = np.arange(len(frame)) if suspect is None else np.flatnonzero(suspect)
            values = as_request_values(frame[column.name].iloc[positions], column)
            try:
                self.adapters[column.name].validate_python(values)
            except ValidationError as error:
                for item in error.errors(include_url=False):  # the inputs are looked at, never echoed
                    position = int(positions[int(item["loc"][0])])
                    request_item = {**item, "loc": ("records", position, column.name, *item["loc"][1:])}
                    text = f"{column.name}: {self.parser.problem(request_item)}"
                    row = found.setdefault(position, [])
                    if text not in row and len(row) < MAX_PROBLEMS_PER_ROW:
                        row.append(text)
        return found

    def suspects(self, values: pd.Series, column: ColumnSchema) -> np.ndarray | None:
        """Rows of one column that might fail the service's checks (a superset), or None to check them all."""
        if (
            column.kind == "numeric"
            and pd.api.types.is_numeric_dtype(values)
            and not pd.api.types.is_bool_dtype(values)
        ):
            numbers = values.to_numpy(dtype="float64", na_value=np.nan)
            low, high = accepted_range(column, self.parser.range_multiple)
            missing = np.isnan(numbers)
            with np.errstate(invalid="ignore"):
                bad = ~missing & (~np.isfinite(numbers) | (numbers < low) | (numbers > high))
            return bad | missing if not column.nullable else bad
        if column.kind == "categorical":
            codes, uniques = pd.factorize(values, use_na_sentinel=True)
            if self.parser.unknown_categories == "reject" and column.categories:
                known = set(column.categories)
                unknown = np.array([category_label(value) not in known for value in uniques], dtype=bool)
            else:
                unknown = np.zeros(len(uniques), dtype=bool)
            missing = codes < 0
            bad = np.where(
                missing, not column.nullable, unknown[np.where(missing, 0, codes)] if len(uniques) else False
            )
            return np.asarray(bad, dtype=bool)
        if column.kind == "boolean" and pd.api.types.is_bool_dtype(values) and not values.isna().any():
            return np.zeros(len(values), dtype=bool)
        return None


def as_request_values(values: pd.Series, column: ColumnSchema) -> list[Any]:
    """A column of a file as a JSON client would send it: numbers as numbers (text that reads as a number too),
    categories as their labels, missing values as null; anything else as it is, to be refused with its reason."""
    if column.kind == "numeric":
        if pd.api.types.is_bool_dtype(values):
            values = values.astype(object)  # true/false is not a number: refused, as the service refuses it
        elif not pd.api.types.is_numeric_dtype(values):
            parsed = pd.to_numeric(values, errors="coerce")
            # the number where the text reads as one; the text itself where it does not (refused with its reason)
            values = parsed.astype(object).where(parsed.notna(), values.astype(object))
        if values.isna().any():
            return values.astype(object).where(values.notna(), None).tolist()
        return values.tolist()
    if column.kind == "datetime":
        if pd.api.types.is_datetime64_any_dtype(values):  # Parquet timestamps: as a JSON client writes them
            return [None if pd.isna(value) else value.isoformat() for value in values]
        return values.astype(object).where(values.notna(), None).tolist()
    if column.kind == "boolean":
        # a file has no types: the words true and false (any case) are the booleans; anything else is refused
        return [
            TRUTH.get(value.strip().lower(), value) if isinstance(value, str) else value
            for value in values.astype(object).where(values.notna(), None).tolist()
        ]
    return category_labels(values).tolist()


def count_rows(path: Path) -> int | None:
    """The number of rows when it is known without reading the file (Parquet), else None."""
    if path.suffix.lower() not in PARQUET_SUFFIXES:
        return None
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


class ChunkWriter:
    """Appends frames to a CSV or Parquet file; Parquet keeps the first chunk's column types."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.format = file_format(path, "output file")
        self.rows = 0
        self._parquet: Any = None
        self._started = False

    def write(self, frame: pd.DataFrame) -> None:
        if self.format == "csv":
            frame.to_csv(self.path, mode="a" if self._started else "w", header=not self._started, index=False)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, table.schema)
            elif table.schema != self._parquet.schema:
                try:
                    table = table.cast(self._parquet.schema)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as error:
                    raise DataLoadError(
                        f"rows {self.rows + 1}-{self.rows + len(frame)} of the output do not fit the column types of "
                        f"the first chunk ({error}); write CSV instead, or raise --chunk-rows"
                    ) from None
            self._parquet.write_table(table)
        self._started = True
        self.rows += len(frame)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        elif not self._started and self.format == "csv":
            self.path.write_text("")


def file_digest(path: Path) -> str:
    """SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def scored_frame(chunk: pd.DataFrame, predictor: Predictor, version: str, keep: tuple[str, ...] | None) -> pd.DataFrame:
    """The kept input columns with the prediction, one probability per class and the model version."""
    prediction = predictor.predict(chunk).to_frame(predictor.schema.classes)
    kept = chunk[list(keep)] if keep is not None else chunk
    out = as_training_types(kept.reset_index(drop=True), predictor.schema)
    for name in prediction.columns:
        out[name if name not in out.columns else f"{name}_scored"] = prediction[name].to_numpy()
    out[VERSION_COLUMN] = version
    return out


def as_training_types(frame: pd.DataFrame, schema: DataSchema) -> pd.DataFrame:
    """The scored rows' feature columns in the types the model was trained with, whatever the file's text held
    (a number column with `unknown` on its first row reads as text, and pandas may mix text and numbers in it): every
    value here passed the service's checks, so numbers read as numbers, booleans as booleans, categories as text."""
    typed = {}
    for column in schema.features:
        if column.name not in frame.columns:
            continue
        values = frame[column.name]
        if column.kind == "numeric" and not pd.api.types.is_numeric_dtype(values):
            typed[column.name] = pd.to_numeric(values, errors="coerce").astype("float64")
        elif column.kind == "boolean" and not pd.api.types.is_bool_dtype(values):
            words = values.map(
                lambda value: TRUTH.get(value.strip().lower(), value) if isinstance(value, str) else value
            )
            typed[column.name] = words.astype(object).where(words.notna(), None)
        elif column.kind == "categorical" and values.dtype == object:
            typed[column.name] = values.map(
                lambda value: None if value is None or pd.isna(value) else category_label(value)
            )
    return frame.assign(**typed) if typed else frame


def as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Refused rows as they were sent: every value as text (blank stays blank), so any file format holds them."""
    return frame.astype(object).where(frame.notna(), None).map(lambda value: value if value is None else str(value))


@dataclass(frozen=True)
class ScoringModel:
    """A registered version loaded for scoring through the safe loader, with the service's request checks."""

    name: str
    version: str
    predictor: Predictor
    parser: RequestParser


def score_file(
    model: ScoringModel,
    data: Path,
    output: Path,
    rejects: Path | None = None,
    strict: bool = False,
    keep: tuple[str, ...] | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Callable[[int], None] | None = None,
    reading: DataSettings | None = None,
) -> ScoringResult:
    """Score `data` into `output` with `model`. Rows the service would refuse go to `rejects` (with their
    row number and the service's reasons) and are never scored; with `strict`, the first one fails the whole run
    and no output is left behind."""
    started = time.perf_counter()
    checker = RowChecker(model.parser)
    rejects = rejects or rejects_path(output)
    writer, rejected_writer = ChunkWriter(output), ChunkWriter(rejects)
    rows = scored = rejected = 0
    first_problems: list[str] = []
    try:
        marks = reading or DataSettings()  # the file's separator, decimal and thousands marks, as training reads
        for chunk in read_table_chunks(data, chunk_rows, marks.delimiter, marks.decimal, marks.thousands):
            if rows == 0:
                check_columns(checker, list(chunk.columns), keep, data)
            problems = checker.problems(chunk)
            if problems:
                numbers = sorted(problems)
                if not first_problems:
                    first_problems = [f"row {rows + i + 1}: {'; '.join(problems[i])}" for i in numbers[:5]]
                if strict:
                    raise SchemaMismatchError(
                        f"{data} has rows the model cannot score (--strict): " + " | ".join(first_problems)
                    )
                bad = as_text(chunk.iloc[numbers])
                bad.insert(0, ROW_COLUMN, np.asarray(numbers) + rows + 1)
                bad[PROBLEMS_COLUMN] = ["; ".join(problems[i]) for i in numbers]
                rejected_writer.write(bad.reset_index(drop=True))
                good = chunk.drop(index=chunk.index[numbers])
            else:
                good = chunk
            if len(good):
                writer.write(scored_frame(good, model.predictor, model.version, keep))
            rows += len(chunk)
            scored += len(good)
            rejected += len(chunk) - len(good)
            if progress is not None:
                progress(len(chunk))
    except BaseException:
        writer.close()
        rejected_writer.close()
        if strict:
            output.unlink(missing_ok=True)
            rejects.unlink(missing_ok=True)
        raise
    writer.close()
    rejected_writer.close()
    if rows == 0:
        output.unlink(missing_ok=True)
        raise DataLoadError(f"{data} holds no rows to score")
    if scored == 0:  # nothing was done: no output named, and the command fails
        output.unlink(missing_ok=True)
        raise SchemaMismatchError(
            f"none of the {rows:,} row(s) of {data} could be scored; they are in {rejects} with the reasons "
            f"(first: {first_problems[0] if first_problems else 'see the file'})"
        )
    if rejected == 0:
        rejects.unlink(missing_ok=True)
    elif first_problems:
        log.info("%d of %d row(s) were not scored (see %s); first: %s", rejected, rows, rejects, first_problems[0])
    return ScoringResult(
        rows,
        scored,
        rejected,
        output,
        rejects if rejected else None,
        model.name,
        model.version,
        time.perf_counter() - started,
        file_digest(data),
        first_problems,
    )


def check_columns(checker: RowChecker, columns: list[str], keep: tuple[str, ...] | None, data: Path) -> None:
    """Refuse the whole file when it lacks a feature column, or when --keep names a column it does not have."""
    missing = checker.missing_columns(columns)
    if missing:
        shown = ", ".join(repr(name) for name in missing[:10])
        raise SchemaMismatchError(
            f"{data} lacks feature column(s) {shown}{' ...' if len(missing) > 10 else ''}: the model was trained on "
            f"them (its columns: {', '.join(repr(name) for name in checker.schema.feature_names[:10])}"
            f"{' ...' if len(checker.schema.feature_names) > 10 else ''})"
        )
    unknown = [name for name in keep or () if name not in columns]
    if unknown:
        raise SchemaMismatchError(
            f"--keep names column(s) {', '.join(repr(name) for name in unknown)} that {data} does not have "
            f"(it has: {', '.join(repr(name) for name in columns[:12])}{' ...' if len(columns) > 12 else ''})"
        )
    if PREDICTION_COLUMN in columns:
        log.info(
            "the input has a %r column; the model's answer is written as %r", PREDICTION_COLUMN, "prediction_scored"
        )


def load_scoring_model(settings: Any, version: str | None = None, alias: str | None = None) -> ScoringModel:
    """The version to score with (given, else the one `alias` points at, else the champion), loaded as the service
    loads it: files checked against the digests on the version, data only; its checks are the service's."""
    from ...core.store import champion_version, describe_version, mlflow_client
    from ...models.loading import load_version

    client = mlflow_client(settings.tracking, fail_fast=True)
    name = settings.model_name
    alias = alias or (None if version else settings.promotion.alias)
    if version is None:
        version = champion_version(client, name, str(alias))
    info = describe_version(client, name, version, alias)
    predictor = load_version(info, settings.tracking.trust_artifact_store).predictor
    parser = RequestParser.for_limits(predictor.schema, settings.service)
    return ScoringModel(name, version, predictor, parser)


def default_output(settings: Any, data: Path, model: ScoringModel) -> Path:
    """`<output_dir>/<file>-<model>-v<version>-<UTC time>.parquet`: a new file each run, never one overwritten."""
    from datetime import UTC, datetime

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Path(settings.output_dir).expanduser() / f"{data.stem}-{model.name}-v{model.version}-{stamp}.parquet"


def describe(result: ScoringResult) -> str:
    """A scoring run in a few Markdown lines, for the MLflow run's description and the Prefect artifact."""
    refused = (
        f"**{result.rejected:,}** refused (not scored) → `{result.rejects}`"
        + (f"; first: {result.first_problems[0]}" if result.first_problems else "")
        if result.rejected
        else "none refused"
    )
    return (
        f"## Scored {result.scored:,} of {result.rows:,} rows with {result.model_name} v{result.model_version}\n\n"
        f"- output: `{result.output}`\n- {refused}\n"
        f"- {result.seconds:.1f} s ({result.rows_per_second:,.0f} rows/s); input SHA-256 `{result.input_digest[:16]}…`"
    )


def score_on_dask(
    model: ScoringModel,
    data: Path,
    output: Path,
    rejects: Path | None = None,
    strict: bool = False,
    keep: tuple[str, ...] | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> ScoringResult:
    """Score a file too large for one machine on the Dask cluster the caller is connected to: the workers read its
    partitions (dask.dataframe), check and score each with the same `RowChecker` and `scored_frame`, and write it as
    one part of a partitioned Parquet folder (`output`, and `rejects` for the refused rows), in one pass over the data.
    Row numbers count from the file's first data row. The workers must see `data` and `output` at the same paths."""
    import shutil

    import dask
    import dask.dataframe as dd

    started = time.perf_counter()
    rejects = rejects or output.with_name(f"{output.name}.rejects")
    if file_format(data, "input file") == "csv":
        # text in: the same checks as a request; numbers are read from it as the service reads them
        frame = dd.read_csv(data, blocksize=max(chunk_rows * 200, 1 << 20), dtype=object, keep_default_na=True)
    else:
        frame = dd.read_parquet(data, split_row_groups=True)
    check_columns(RowChecker(model.parser), [str(name) for name in frame.columns], keep, data)
    lengths = [int(length) for length in frame.map_partitions(len).compute()]
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int).tolist()
    for folder in (output, rejects):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    tasks = [
        dask.delayed(score_partition)(part, number, offset, model, keep, output, rejects)
        for number, (part, offset) in enumerate(zip(frame.to_delayed(), offsets, strict=True))
    ]
    counts = dask.compute(*tasks)
    scored, rejected = sum(count[0] for count in counts), sum(count[1] for count in counts)
    first_problems = [problem for count in counts for problem in count[2]][:5]
    if rejected == 0:
        shutil.rmtree(rejects, ignore_errors=True)
    if strict and rejected:
        shutil.rmtree(output, ignore_errors=True)
        shutil.rmtree(rejects, ignore_errors=True)
        raise SchemaMismatchError(f"{data} has rows the model cannot score (--strict): " + " | ".join(first_problems))
    return ScoringResult(
        sum(lengths),
        scored,
        rejected,
        output,
        rejects if rejected else None,
        model.name,
        model.version,
        time.perf_counter() - started,
        file_digest(data),
        first_problems,
    )


def score_partition(
    part: pd.DataFrame,
    number: int,
    offset: int,
    model: ScoringModel,
    keep: tuple[str, ...] | None,
    output: Path,
    rejects: Path,
) -> tuple[int, int, list[str]]:
    """One partition, on a Dask worker: scored rows to `output/part-N.parquet`, refused ones (with their row numbers
    and reasons) to `rejects/part-N.parquet`; returns the two counts and the first problems."""
    part = part.reset_index(drop=True)
    part.columns = [str(name) for name in part.columns]
    problems = RowChecker(model.parser).problems(part)
    numbers = sorted(problems)
    name = f"part-{number:05d}.parquet"
    if numbers:
        bad = part.iloc[numbers].astype(str)
        bad.insert(0, ROW_COLUMN, np.asarray(numbers, dtype="int64") + offset + 1)
        bad[PROBLEMS_COLUMN] = ["; ".join(problems[i]) for i in numbers]
        bad.reset_index(drop=True).to_parquet(rejects / name, index=False)
    good = part.drop(index=numbers)
    if len(good):
        scored_frame(good, model.predictor, model.version, keep).to_parquet(output / name, index=False)
    first = [f"row {offset + i + 1}: {'; '.join(problems[i])}" for i in numbers[:5]]
    return len(good), len(numbers), first
