"""Drift retrains through the same gate: the monitoring flow runs the training deployment (as a subflow, so the
Prefect UI shows which look started which training), at most one at a time per model and never within the cool-down.

Prefect-facing wiring, like `runs`; what it decides from is plain data (`retrain_decision`), tested directly.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.settings import Settings
from ..models.livemetrics import decode
from .steps import data
from .steps.tables import read_table

log = logging.getLogger(__name__)

RETRAIN_TAG = "neuroflow-drift-retrain"
DRIFT_EVENT = "neuroflow.drift.detected"


@dataclass(frozen=True)
class EarlierRun:
    """A drift-triggered training of the same model, as Prefect knows it."""

    run_id: str
    created: datetime
    finished: bool


def model_tag(model_name: str) -> str:
    return f"neuroflow-model:{model_name}"


def retrain_decision(earlier: list[EarlierRun], cooldown_minutes: float, now: datetime) -> str | None:
    """Why not to start another training now (None: start it). One in flight per model, then a cool-down."""
    running = [run for run in earlier if not run.finished]
    if running:
        return f"a drift-triggered training is still running (flow run {running[0].run_id})"
    if earlier:
        newest = max(earlier, key=lambda run: run.created)
        if now - newest.created < timedelta(minutes=cooldown_minutes):
            ready = newest.created + timedelta(minutes=cooldown_minutes)
            return (
                f"the previous drift-triggered training (flow run {newest.run_id}) started at "
                f"{newest.created.isoformat(timespec='minutes')}; the cool-down (monitoring.cooldown_minutes = "
                f"{cooldown_minutes:g}) lasts until {ready.isoformat(timespec='minutes')}"
            )
    return None


def earlier_runs(model_name: str) -> list[EarlierRun]:
    """The drift-triggered trainings of this model that Prefect knows of (newest 50)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[RETRAIN_TAG, model_tag(model_name)])),
            sort=FlowRunSort.EXPECTED_START_TIME_DESC,
            limit=50,
        )
    return [
        EarlierRun(str(run.id), run.created or datetime.now(UTC), run.state is not None and run.state.is_final())
        for run in runs
    ]


def feedback_table(settings: Settings, target: str) -> pd.DataFrame:
    """The served records that have a true label, as training rows (features and the target column)."""
    from ..core.predictionlog import CHAMPION, open_store
    from ..models.livemetrics import labelled

    store = open_store(settings.service.prediction_log)
    if store is None:
        return pd.DataFrame()
    records = store.read(settings.model_name)
    joined = labelled(records[records["role"] == CHAMPION], store.read_feedback())
    if joined.empty:
        return pd.DataFrame()
    rows = pd.DataFrame.from_records(decode(joined["features"]))
    rows[target] = list(joined["label"])
    return rows


def new_rows(frame: pd.DataFrame, served: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The served rows that are not already in `frame` (nor repeated among themselves), and how many were left out:
    a copy of a row the data holds would fall into the next split's test rows while its twin trains."""
    columns = list(served.columns)
    known = data.row_digests(frame, columns)
    digests = pd.Series(data.row_digests(served, columns), index=served.index)
    fresh = ~digests.isin(known) & ~digests.duplicated()
    return served[fresh.to_numpy()], int((~fresh).sum())


def training_data(settings: Settings, target: str, folder: Path) -> Path | None:
    """The file the triggered training runs on: monitoring.retrain_data, with the labelled served rows appended
    when monitoring.append_feedback is on (written beside it as a new file); None to train on the configured data."""
    fresh = settings.monitoring.retrain_data
    if fresh is None:
        return None
    if not settings.monitoring.append_feedback:
        return fresh
    frame = read_table(fresh)
    served = feedback_table(settings, target)
    if served.empty:
        return fresh
    served = served[[name for name in frame.columns if name in served.columns]]
    served, repeats = new_rows(frame, served)
    if served.empty:
        log.info("retraining data: %s; its %d labelled served row(s) are all in it already", fresh, repeats)
        return fresh
    folder.mkdir(parents=True, exist_ok=True)
    combined = pd.concat([frame, served], ignore_index=True)
    path = folder / f"{fresh.stem}-with-feedback-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}.csv"
    combined.to_csv(path, index=False)
    log.info(
        "retraining data: %s (%d rows) with %d labelled served rows appended (%d already in it left out)",
        fresh,
        len(frame),
        len(served),
        repeats,
    )
    return path


def trigger_training(
    settings: Settings, target: str, drifted: list[str], version: str | None
) -> tuple[str | None, str]:
    """Run the training deployment for this model unless one is in flight or the cool-down holds; returns the new
    flow run's id (or None) and what was done, in words. A Prefect event records the drift either way."""
    from prefect.deployments import run_deployment
    from prefect.events import emit_event

    name = settings.model_name
    emit_event(
        event=DRIFT_EVENT,
        resource={"prefect.resource.id": f"neuroflow.model.{name}", "prefect.resource.name": name},
        payload={"model_version": version, "drifted_features": drifted},
    )
    reason = retrain_decision(earlier_runs(name), settings.monitoring.cooldown_minutes, datetime.now(UTC))
    if reason is not None:
        return None, f"not retraining: {reason}"
    parameters: dict[str, Any] = {"model_name": name}
    data = training_data(settings, target, settings.scoring.output_dir.parent / "retraining")
    if data is not None:
        parameters |= {"data_path": str(data), "target": target}
    run: Any = run_deployment(
        name=settings.monitoring.training_deployment,
        parameters=parameters,
        timeout=0,
        tags=[RETRAIN_TAG, model_tag(name)],
    )
    where = f"on {data}" if data is not None else "on its configured data"
    return str(run.id), f"started {settings.monitoring.training_deployment} (flow run {run.name}) {where}"
