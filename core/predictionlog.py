"""The prediction log: every served record, its answer and its later label, in a store pandas can read.

Two stores, chosen by `service.prediction_log`: a folder of Parquet files partitioned by day (the embedded default,
nothing to start), or one table in PostgreSQL (created on first use). The service writes through `PredictionLog`, a
buffer emptied by a background thread, so a request never waits for the store; monitoring and feedback read and
write the stores directly. No BentoML and no Prefect here.
"""

import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson
import pandas as pd

from .errors import ConfigError
from .settings import POSTGRES_URL_FORMS, redact
from .store import loaded_types, reason

log = logging.getLogger(__name__)

PREDICTIONS_TABLE = "neuroflow_predictions"
FEEDBACK_TABLE = "neuroflow_feedback"
LOG_COLUMNS = (
    "request_id",
    "served_at",
    "model_name",
    "model_version",
    "role",
    "features",
    "prediction",
    "probabilities",
)
FEEDBACK_COLUMNS = ("request_id", "label", "received_at")
WARN_EVERY_SECONDS = 60.0
CHAMPION, SHADOW = "champion", "shadow"


_ID_PREFIX = uuid.uuid4().hex[:16]  # this process's; the counter below makes each request's id unique within it
_ID_COUNTER = itertools.count(1)


def new_request_ids(count: int) -> list[str]:
    """One id per record of a request: the request's own id and the record's position (`3f2a...-0`)."""
    base = f"{_ID_PREFIX}{next(_ID_COUNTER):08x}"
    if count == 1:
        return [f"{base}-0"]
    return [f"{base}-{index}" for index in range(count)]


@dataclass(slots=True)
class Served:
    """One request as answered, queued as it is; turned into columns by the writer thread, off the request path."""

    request_ids: Sequence[str]
    model_name: str
    model_version: str
    records: Sequence[dict[str, Any]]
    answers: Any  # a sequence or a NumPy array of the answers, in the target's type
    probabilities: np.ndarray | None = None
    classes: Sequence[str] | None = None
    role: str = CHAMPION
    served_at: float = field(default_factory=time.time)


LogColumns = dict[str, list[Any]]


def log_rows(served: Served) -> list[tuple[Any, ...]]:
    """One request's records as rows of the log's columns (`LOG_COLUMNS`): the values as JSON text, the time in
    seconds."""
    answers = served.answers.tolist() if isinstance(served.answers, np.ndarray) else list(served.answers)
    if served.probabilities is not None and served.classes:
        classes = served.classes
        chances: list[str | None] = [
            orjson.dumps(dict(zip(classes, row, strict=True))).decode() for row in served.probabilities.tolist()
        ]
    else:
        chances = [None] * len(answers)
    head = (served.served_at, served.model_name, served.model_version, served.role)
    return [
        (request_id, *head, orjson.dumps(record).decode(), orjson.dumps(answer).decode(), chance)
        for request_id, record, answer, chance in zip(served.request_ids, served.records, answers, chances, strict=True)
    ]


def columns_table(columns: LogColumns) -> Any:
    """The columns as an Arrow table, the time as UTC microseconds."""
    import pyarrow as pa

    seconds = np.asarray(columns["served_at"], dtype="float64")
    arrays = {name: pa.array(values, type=pa.string()) for name, values in columns.items() if name != "served_at"}
    arrays["served_at"] = pa.array((seconds * 1e6).astype("int64"), type=pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    return pa.table({name: arrays[name] for name in LOG_COLUMNS})


def rows_frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """Rows of the log's columns as the frame every store's `read` returns."""
    frame = pd.DataFrame(rows, columns=list(LOG_COLUMNS))
    frame["served_at"] = pd.to_datetime(frame["served_at"], utc=True)
    return frame


class PredictionStore(Protocol):
    """Where prediction records and feedback live."""

    description: str

    def write(self, columns: LogColumns) -> None: ...

    def read(
        self, model_name: str | None = None, since: datetime | None = None, last: int | None = None
    ) -> pd.DataFrame: ...

    def known_ids(self, ids: Sequence[str]) -> set[str]: ...

    def write_feedback(self, frame: pd.DataFrame) -> None: ...

    def read_feedback(self) -> pd.DataFrame: ...


class ParquetStore:
    """`<folder>/predictions/day=YYYY-MM-DD/*.parquet` and `<folder>/feedback/*.parquet`: readable with
    `pd.read_parquet(folder / "predictions")`."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.description = f"Parquet files under {self.folder}"

    def write(self, columns: LogColumns) -> None:
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        table = columns_table(columns)
        first, last = (datetime.fromtimestamp(columns["served_at"][index], UTC) for index in (0, -1))
        if first.date() == last.date():  # one flush, one day: the usual case, no per-row work
            parts = [(first.strftime("%Y-%m-%d"), table)]
        else:
            days = pc.strftime(table["served_at"], format="%Y-%m-%d")
            parts = [(day, table.filter(pc.equal(days, day))) for day in pc.unique(days).to_pylist()]
        for day, rows in parts:
            part = self.folder / "predictions" / f"day={day}"
            part.mkdir(parents=True, exist_ok=True)
            pq.write_table(rows, part / f"part-{time.time_ns()}-{uuid.uuid4().hex[:8]}.parquet")

    def read(
        self, model_name: str | None = None, since: datetime | None = None, last: int | None = None
    ) -> pd.DataFrame:
        files = self._files(since)
        if not files:
            return rows_frame([])
        frame = pd.concat([pd.read_parquet(file) for file in files], ignore_index=True)
        if model_name is not None:
            frame = frame[frame["model_name"] == model_name]
        if since is not None:
            frame = frame[frame["served_at"] >= pd.Timestamp(since)]
        frame = frame.sort_values("served_at", kind="stable")
        if last is not None:
            frame = latest_records(frame, last)
        return frame.reset_index(drop=True)

    def _files(self, since: datetime | None = None) -> list[Path]:
        """The log's files, oldest day first; only the days from `since` on."""
        files = []
        for day_folder in sorted((self.folder / "predictions").glob("day=*")):
            if since is not None and day_folder.name[4:] < since.strftime("%Y-%m-%d"):
                continue
            files.extend(sorted(day_folder.glob("*.parquet")))
        return files

    def known_ids(self, ids: Sequence[str]) -> set[str]:
        wanted, found = set(ids), set()
        for file in self._files():  # the id column only
            found |= wanted.intersection(pd.read_parquet(file, columns=["request_id"])["request_id"])
        return found

    def write_feedback(self, frame: pd.DataFrame) -> None:
        folder = self.folder / "feedback"
        folder.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(folder / f"part-{time.time_ns()}-{uuid.uuid4().hex[:8]}.parquet", index=False)

    def read_feedback(self) -> pd.DataFrame:
        files = sorted((self.folder / "feedback").glob("*.parquet"))
        if not files:
            return pd.DataFrame(columns=list(FEEDBACK_COLUMNS))
        return pd.concat([pd.read_parquet(file) for file in files], ignore_index=True)


def latest_records(frame: pd.DataFrame, last: int) -> pd.DataFrame:
    """The rows of the `last` most recently served champion records, with any shadow rows of the same requests."""
    champion_ids = frame.loc[frame["role"] == CHAMPION, "request_id"].tail(last)
    return frame[frame["request_id"].isin(set(champion_ids))]


class PostgresStore:
    """Two tables in PostgreSQL, created on first use; one row per record."""

    CONNECT_TIMEOUT_SECONDS = 3

    def __init__(self, url: str) -> None:
        self.url = libpq_url(url)
        self.description = f"PostgreSQL {redact(self.url)}"
        self._created = False

    def connect(self) -> Any:
        import psycopg

        connection = psycopg.connect(
            self.url, connect_timeout=self.CONNECT_TIMEOUT_SECONDS, options="-c statement_timeout=30000"
        )
        if not self._created:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"CREATE TABLE IF NOT EXISTS {PREDICTIONS_TABLE} (request_id text NOT NULL, served_at timestamptz "
                    "NOT NULL, model_name text NOT NULL, model_version text NOT NULL, role text NOT NULL, features "
                    "jsonb NOT NULL, prediction jsonb, probabilities jsonb)"
                )
                cursor.execute(
                    f"CREATE INDEX IF NOT EXISTS {PREDICTIONS_TABLE}_served ON {PREDICTIONS_TABLE} "
                    "(model_name, served_at)"
                )
                cursor.execute(f"CREATE INDEX IF NOT EXISTS {PREDICTIONS_TABLE}_id ON {PREDICTIONS_TABLE} (request_id)")
                cursor.execute(
                    f"CREATE TABLE IF NOT EXISTS {FEEDBACK_TABLE} (request_id text NOT NULL, label jsonb NOT NULL, "
                    "received_at timestamptz NOT NULL)"
                )
            connection.commit()
            self._created = True
        return connection

    def write(self, columns: LogColumns) -> None:
        times = [datetime.fromtimestamp(moment, UTC) for moment in columns["served_at"]]
        rows = zip(*[times if name == "served_at" else columns[name] for name in LOG_COLUMNS], strict=True)
        names = ", ".join(LOG_COLUMNS)
        with (
            self.connect() as connection,
            connection.cursor() as cursor,
            cursor.copy(f"COPY {PREDICTIONS_TABLE} ({names}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)

    def read(
        self, model_name: str | None = None, since: datetime | None = None, last: int | None = None
    ) -> pd.DataFrame:
        where: list[str] = ["TRUE"]
        params: list[Any] = []
        if model_name is not None:
            where.append("model_name = %s")
            params.append(model_name)
        if since is not None:
            where.append("served_at >= %s")
            params.append(since)
        columns = "request_id, served_at, model_name, model_version, role, features::text, prediction::text, " + (
            "probabilities::text"
        )
        sql = f"SELECT {columns} FROM {PREDICTIONS_TABLE} WHERE {' AND '.join(where)} ORDER BY served_at"
        if last is not None:
            sql = (
                f"SELECT {columns} FROM {PREDICTIONS_TABLE} WHERE request_id IN (SELECT request_id FROM "
                f"{PREDICTIONS_TABLE} WHERE {' AND '.join(where)} AND role = 'champion' ORDER BY served_at DESC "
                f"LIMIT {int(last)}) ORDER BY served_at"
            )
        with self.connect() as connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
            frame = rows_frame(cursor.fetchall())
        return frame

    def known_ids(self, ids: Sequence[str]) -> set[str]:
        with self.connect() as connection, connection.cursor() as cursor:
            cursor.execute(
                f"SELECT DISTINCT request_id FROM {PREDICTIONS_TABLE} WHERE request_id = ANY(%s)", [list(ids)]
            )
            return {row[0] for row in cursor.fetchall()}

    def write_feedback(self, frame: pd.DataFrame) -> None:
        columns = ", ".join(FEEDBACK_COLUMNS)
        with (
            self.connect() as connection,
            connection.cursor() as cursor,
            cursor.copy(f"COPY {FEEDBACK_TABLE} ({columns}) FROM STDIN") as copy,
        ):
            for row in frame.itertuples(index=False):
                copy.write_row(tuple(row))

    def read_feedback(self) -> pd.DataFrame:
        with self.connect() as connection, connection.cursor() as cursor:
            cursor.execute(f"SELECT request_id, label::text, received_at FROM {FEEDBACK_TABLE}")
            return pd.DataFrame(cursor.fetchall(), columns=list(FEEDBACK_COLUMNS))


# The errors a prediction store raises when it fails (the disk, the database, a Parquet file), as (module, class).
STORE_ERROR_TYPES = (("psycopg", "Error"), ("pyarrow.lib", "ArrowException"))


def store_errors() -> tuple[type[Exception], ...]:
    """What `except` catches around a prediction store's reads and writes: its own failures, never a bug."""
    return (OSError, *loaded_types(STORE_ERROR_TYPES))


def libpq_url(url: str) -> str:
    """A PostgreSQL URL in any of `POSTGRES_URL_FORMS` as libpq reads it (`postgresql://`)."""
    scheme, rest = url.split("://", 1)
    return f"postgresql://{rest}" if f"{scheme}://" in POSTGRES_URL_FORMS else url


def open_store(location: str) -> PredictionStore | None:
    """The store `service.prediction_log` names, or None when it is off."""
    if location == "off":
        return None
    if location.startswith(POSTGRES_URL_FORMS):
        return PostgresStore(location)
    if "://" in location:
        raise ConfigError(f"service.prediction_log {redact(location)!r}: give a folder, a postgresql:// URL, or off")
    return ParquetStore(Path(location).expanduser())


def window_start(hours: float, now: datetime | None = None) -> datetime:
    return (now or datetime.now(UTC)) - timedelta(hours=hours)


class PredictionLog:
    """A buffer of served requests that a background thread writes to the store every `flush_seconds`.

    `record` never blocks and never raises: when the buffer is full, or the store is slow, full or down, records are
    dropped, counted (`on_drop`) and a warning is logged at most once a minute."""

    def __init__(
        self,
        store: PredictionStore,
        flush_seconds: float = 1.0,
        max_rows: int = 100_000,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        self.store = store
        self.flush_seconds = flush_seconds
        self.max_rows = max_rows
        self.on_drop = on_drop or (lambda _: None)
        self.dropped = 0
        self.written = 0
        self._rows: list[tuple[Any, ...]] = []  # log_rows of the answered requests, until the next flush
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_warning = 0.0
        self._unwarned = 0

    def start(self) -> "PredictionLog":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="neuroflow-prediction-log", daemon=True)
            self._thread.start()
        return self

    def record(self, served: Served) -> None:
        """Queue one answered request. Its values are turned into the log's text here, a few microseconds a record,
        so the writer thread only hands finished rows to the store: a thread that converted thousands of records at
        a time would hold the interpreter lock for tens of milliseconds and stall the server's loop."""
        rows = log_rows(served)
        count = len(rows)
        with self._lock:
            full = len(self._rows) + count > self.max_rows
            if not full:
                self._rows.extend(rows)
        if full:
            self._drop(count, f"the buffer holds {self.max_rows:,} records already (the store is behind)")

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            self.flush()

    def flush(self) -> int:
        """Write everything buffered now; returns how many records were written."""
        with self._flushing:
            with self._lock:
                rows, self._rows = self._rows, []
            count = len(rows)
            if not count:
                return 0
            columns = dict(zip(LOG_COLUMNS, map(list, zip(*rows, strict=True)), strict=True))
            try:
                self.store.write(columns)
            except Exception as error:
                self._drop(count, reason(error))
                return 0
            self.written += count
            return count

    def _drop(self, count: int, why: str) -> None:
        self.dropped += count
        self._unwarned += count
        try:
            self.on_drop(count)
        except Exception:  # a metrics hiccup must not reach a request
            log.debug("could not count dropped records", exc_info=True)
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY_SECONDS:
            log.warning(
                "prediction log: %d record(s) could not be written to %s (%s); requests are still answered. "
                "Dropped so far: %d (neuroflow_prediction_log_dropped_total on /metrics)",
                self._unwarned,
                self.store.description,
                why,
                self.dropped,
            )
            self._last_warning = now
            self._unwarned = 0

    def close(self) -> None:
        """Stop the thread and write what is still buffered (called on shutdown, SIGTERM included)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        written = self.flush()
        if written:
            log.info("prediction log: flushed %d buffered record(s) on shutdown", written)


def feedback_frame(request_ids: Iterable[str], labels: Iterable[Any]) -> pd.DataFrame:
    """Feedback rows as stored: the id, the label as JSON, the time it arrived."""
    now = datetime.now(UTC)
    ids, values = list(request_ids), [json.dumps(label) for label in labels]
    return pd.DataFrame({"request_id": ids, "label": values, "received_at": [now] * len(ids)})
