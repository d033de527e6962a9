"""Drift, shadow agreement and the retraining decision, on tiny generated data (Evidently runs for real)."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neuroflow.core.predictionlog import CHAMPION, rows_frame
from neuroflow.core.settings import MonitoringSettings
from neuroflow.models.schema import infer_schema
from neuroflow.pipelines.retraining import EarlierRun, retrain_decision
from neuroflow.pipelines.steps.monitoring import (
    PREDICTION,
    monitor_window,
    parse_since,
    served_frame,
    shadow_agreement,
)

FEATURES = ["f0", "f1", "f2", "f3", "f4", "city"]


def table(rows: int, seed: int, shift: float = 0.0, shifted: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(size=rows) for name in FEATURES[:5]})
    for name in FEATURES[:shifted]:
        frame[name] += shift
    frame["city"] = rng.choice(["paris", "lyon"], rows).astype(object)
    frame["target"] = (frame["f0"] > 0).astype(int)
    return frame


SCHEMA = infer_schema(table(400, 0), "target", "binary")


def logged(frame: pd.DataFrame, version: str = "1", role: str = CHAMPION, ids: list[str] | None = None) -> pd.DataFrame:
    now = datetime.now(UTC)
    ids = ids or [f"r{index}-0" for index in range(len(frame))]
    rows = [
        (rid, now, "m", version, role, json.dumps(record), json.dumps(int(record["f0"] > 0)), None)
        for rid, record in zip(ids, frame[FEATURES].to_dict("records"), strict=True)
    ]
    return rows_frame(rows)


def reference() -> pd.DataFrame:
    frame = table(400, 0)[FEATURES]
    frame[PREDICTION] = (frame["f0"] > 0).astype(int)
    return frame


def judge(records: pd.DataFrame, tmp_path: Path, **settings: object) -> object:
    return monitor_window(
        records,
        pd.DataFrame(columns=["request_id", "label", "received_at"]),
        reference(),
        SCHEMA,
        "m",
        "1",
        MonitoringSettings(**settings),  # type: ignore[arg-type]
        "test",
        tmp_path / "report.html",
    )


def test_records_like_the_training_data_show_no_drift(tmp_path: Path) -> None:
    result = judge(logged(table(200, 1)), tmp_path)
    assert result.verdict == "no drift" and not result.drift_detected  # type: ignore[attr-defined]
    assert len(result.features) == 6 and result.rows == 200  # type: ignore[attr-defined]
    html = (tmp_path / "report.html").read_text()
    assert '<script src="http' not in html and len(html) > 100_000  # the report opens offline


def test_moved_features_are_named_and_drift_is_detected(tmp_path: Path) -> None:
    result = judge(logged(table(200, 2, shift=3.0, shifted=3)), tmp_path)
    assert result.drift_detected  # type: ignore[attr-defined]
    assert set(result.drifted_features) >= {"f0", "f1", "f2"}  # type: ignore[attr-defined]
    assert result.share_drifted >= 0.5  # type: ignore[attr-defined]
    assert result.prediction_drift is not None and result.prediction_drift.drifted  # type: ignore[attr-defined]
    payload = result.to_json()  # type: ignore[attr-defined]
    assert payload["drift_detected"] is True and "f0" in payload["drifted_features"]
    assert {"share_drifted", "rows", "model_version"} <= set(payload)
    # The same records under a higher bar: three of six features is under 60 %.
    assert not judge(logged(table(200, 2, shift=3.0, shifted=3)), tmp_path, drift_share=0.6).drift_detected  # type: ignore[attr-defined]


def test_too_few_rows_is_said_and_not_called_no_drift(tmp_path: Path) -> None:
    result = judge(logged(table(10, 3, shift=5.0, shifted=5)), tmp_path)
    assert result.verdict == "too few rows" and not result.enough_rows  # type: ignore[attr-defined]
    assert "not a 'no drift'" in result.paragraph()  # type: ignore[attr-defined]
    assert not (tmp_path / "report.html").exists()


def test_served_records_are_typed_as_in_training() -> None:
    frame = served_frame(logged(table(5, 4)), SCHEMA)
    assert list(frame.columns) == [*FEATURES, PREDICTION]
    assert frame["f0"].dtype == "float64" and frame[PREDICTION].isin([0, 1]).all()


def test_shadow_agreement_pairs_requests() -> None:
    champion = logged(table(4, 5))
    shadow = champion.copy()
    shadow["role"], shadow["model_version"] = "shadow", "2"
    shadow.loc[0, "prediction"] = json.dumps(1 - json.loads(shadow.loc[0, "prediction"]))
    agreement = shadow_agreement(pd.concat([champion, shadow], ignore_index=True), "binary")
    assert agreement == {"version": "2", "rows": 4, "agreement": 0.75}
    assert shadow_agreement(champion, "binary") is None


def test_one_triggered_training_in_flight_then_a_cool_down() -> None:
    now = datetime.now(UTC)
    assert retrain_decision([], 60, now) is None
    running = [EarlierRun("a", now - timedelta(minutes=5), finished=False)]
    assert "still running" in str(retrain_decision(running, 0, now))
    recent = [EarlierRun("b", now - timedelta(minutes=30), finished=True)]
    assert "cool-down" in str(retrain_decision(recent, 60, now))
    assert retrain_decision(recent, 20, now) is None


def test_since_takes_a_time_or_a_span() -> None:
    assert parse_since("2026-12-01T08:00") == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert datetime.now(UTC) - parse_since("6h") == pytest.approx(timedelta(hours=6), abs=timedelta(seconds=5))
    with pytest.raises(ValueError):
        parse_since("yesterday")


def test_retraining_data_is_the_fresh_file_with_the_labelled_served_rows_appended(tmp_path: Path) -> None:
    from neuroflow.core.predictionlog import ParquetStore, PredictionLog, Served, feedback_frame
    from neuroflow.core.settings import load_settings
    from neuroflow.pipelines.retraining import training_data

    fresh = tmp_path / "fresh.csv"
    table(30, 6)[[*FEATURES, "target"]].to_csv(fresh, index=False)
    served = table(5, 7)
    log = PredictionLog(ParquetStore(tmp_path / "log"))
    records = served[FEATURES].to_dict("records")
    ids = [f"s{index}-0" for index in range(5)]
    log.record(Served(ids, "neuroflow-m", "1", records, np.zeros(5, dtype=int)))
    log.flush()
    ParquetStore(tmp_path / "log").write_feedback(feedback_frame(ids[:3], [1, 0, 1]))  # two never labelled
    base = {"service": {"prediction_log": str(tmp_path / "log")}, "tracking": {"model_name": "neuroflow-m"}}
    settings = load_settings(overrides=base | {"monitoring": {"retrain_data": str(fresh), "append_feedback": True}})
    combined = training_data(settings, "target", tmp_path / "retraining")
    assert combined is not None and combined != fresh
    frame = pd.read_csv(combined)
    assert len(frame) == 33 and list(frame.columns) == [*FEATURES, "target"]
    assert frame["target"].tail(3).tolist() == [1, 0, 1]
    assert frame["f0"].tail(3).tolist() == pytest.approx(served["f0"].head(3).tolist())
    plain = load_settings(overrides=base | {"monitoring": {"retrain_data": str(fresh)}})
    assert training_data(plain, "target", tmp_path / "retraining") == fresh
    assert training_data(load_settings(overrides=base), "target", tmp_path / "retraining") is None
