"""The prediction log: stores that pandas reads back, and a writer that never blocks or fails a request."""

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neuroflow.core.errors import ConfigError
from neuroflow.core.predictionlog import (
    ParquetStore,
    PostgresStore,
    PredictionLog,
    Served,
    feedback_frame,
    new_request_ids,
    open_store,
)


def served(count: int = 2, version: str = "1", role: str = "champion") -> Served:
    ids = new_request_ids(count)
    records = [{"age": 30.0 + index, "city": "paris"} for index in range(count)]
    probabilities = np.tile([0.25, 0.75], (count, 1))
    return Served(ids, "m", version, records, np.array([1] * count, dtype=object), probabilities, ("0", "1"), role)


def test_records_come_back_from_parquet_as_a_table_pandas_reads(tmp_path: Path) -> None:
    store = ParquetStore(tmp_path)
    log = PredictionLog(store)
    first, second = served(3), served(2, version="2")
    log.record(first)
    log.record(second)
    assert log.flush() == 5
    read = pd.read_parquet(tmp_path / "predictions")  # partitioned by day, readable as one table
    assert len(read) == 5 and "day" in read.columns
    frame = store.read("m")
    assert list(frame["request_id"]) == [*first.request_ids, *second.request_ids]
    assert list(frame["model_version"]) == ["1", "1", "1", "2", "2"]
    assert json.loads(frame["features"].iloc[0]) == {"age": 30.0, "city": "paris"}
    assert frame["prediction"].iloc[0] == "1" and json.loads(frame["probabilities"].iloc[0]) == {"0": 0.25, "1": 0.75}
    assert len(store.read("m", last=2)) == 2 and store.read("other").empty
    assert store.known_ids([first.request_ids[0], "nope-0"]) == {first.request_ids[0]}


class BrokenStore:
    description = "a store that is down"

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls = 0

    def write(self, frame: pd.DataFrame) -> None:
        self.calls += 1
        time.sleep(self.delay)
        raise ConnectionError("connection refused")


def test_a_store_that_is_down_costs_records_never_a_request(caplog: pytest.LogCaptureFixture) -> None:
    counted: list[int] = []
    log = PredictionLog(BrokenStore(), on_drop=counted.append)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, "neuroflow.core.predictionlog"):
        for _ in range(3):
            log.record(served(2))
            assert log.flush() == 0
    assert log.dropped == 6 and sum(counted) == 6
    warnings = [record for record in caplog.records if "could not be written" in record.getMessage()]
    assert len(warnings) == 1  # at most once a minute
    assert "connection refused" in warnings[0].getMessage()


def test_a_slow_store_never_holds_up_record_and_a_full_buffer_drops() -> None:
    store = BrokenStore(delay=0.5)
    log = PredictionLog(store, flush_seconds=0.01, max_rows=4).start()  # type: ignore[arg-type]
    try:
        started = time.perf_counter()
        for _ in range(50):
            log.record(served(1))
        assert time.perf_counter() - started < 0.4  # the writer is stuck on the store; recording is not
        assert log.dropped >= 40
    finally:
        log.close()


def test_close_writes_what_is_buffered(tmp_path: Path) -> None:
    log = PredictionLog(ParquetStore(tmp_path), flush_seconds=3600).start()
    log.record(served(4))
    assert ParquetStore(tmp_path).read().empty  # not yet written: the next flush is an hour away
    log.close()
    assert len(ParquetStore(tmp_path).read()) == 4


def test_feedback_is_stored_beside_the_log(tmp_path: Path) -> None:
    store = ParquetStore(tmp_path)
    store.write_feedback(feedback_frame(["a-0", "b-0"], [1, "yes"]))
    read = store.read_feedback()
    assert list(read["request_id"]) == ["a-0", "b-0"] and list(read["label"]) == ["1", '"yes"']


def test_the_setting_names_the_store() -> None:
    assert open_store("off") is None
    assert isinstance(open_store("logs/predictions"), ParquetStore)
    store = open_store("postgresql://user:secret@db:5432/predictions")
    assert isinstance(store, PostgresStore) and "secret" not in store.description
    with pytest.raises(ConfigError, match="postgresql://"):
        open_store("mysql://user:secret@db/predictions")
    from neuroflow.core.settings import load_settings

    with pytest.raises(ConfigError, match=r"service.prediction_log: 'mysql://\*\*\*@db/p': give a folder"):
        load_settings(overrides={"service": {"prediction_log": "mysql://user:secret@db/p"}})


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the machine's PostgreSQL (trust auth), dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    name = f"nf_log_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        pytest.skip(f"no PostgreSQL on 127.0.0.1:5432 ({error})")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_postgres_holds_one_row_per_record_in_a_table_it_creates(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    log = PredictionLog(store)
    first, shadow = served(3), served(3, version="2", role="shadow")
    shadow = Served(
        first.request_ids, "m", "2", first.records, shadow.answers, shadow.probabilities, ("0", "1"), "shadow"
    )
    log.record(first)
    log.record(shadow)
    assert log.flush() == 6
    frame = store.read("m")
    assert len(frame) == 6 and set(frame["role"]) == {"champion", "shadow"}
    assert str(frame["served_at"].dt.tz) == "UTC"
    assert json.loads(frame["features"].iloc[0])["city"] == "paris"
    assert len(store.read("m", last=2)) == 4  # the last two records and their shadow rows
    assert store.known_ids([first.request_ids[1], "x-0"]) == {first.request_ids[1]}
    store.write_feedback(feedback_frame([first.request_ids[0]], [1]))
    assert list(store.read_feedback()["request_id"]) == [first.request_ids[0]]


def test_postgres_that_is_down_is_dropped_and_counted_quickly() -> None:
    log = PredictionLog(PostgresStore("postgresql://postgres@127.0.0.1:1/none"))
    log.record(served(2))
    started = time.perf_counter()
    assert log.flush() == 0 and log.dropped == 2
    assert time.perf_counter() - started < 10


def test_record_is_safe_from_many_threads(tmp_path: Path) -> None:
    log = PredictionLog(ParquetStore(tmp_path), flush_seconds=0.05).start()
    threads = [threading.Thread(target=lambda: [log.record(served(1)) for _ in range(200)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    assert len(ParquetStore(tmp_path).read()) == 800 and log.dropped == 0
