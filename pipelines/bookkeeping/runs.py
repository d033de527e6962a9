"""The bookkeeping every flow run does the same way: open its MLflow run, link it from Prefect, note a failure, close
it as FINISHED or FAILED, and publish its story as a Prefect artifact. The flows open one and write into it."""

import contextlib
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from mlflow.tracking import MlflowClient
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.runtime import flow_run as prefect_run
from prefect.utilities.urls import url_for

from ...core.errors import NeuroflowError
from ...core.mlflowhttp import failing_fast
from ...core.settings import Settings, TrackingSettings
from ...core.store import is_store_failure, store_failure
from ...core.store import reason as short_reason
from . import tracking
from .registry import PromotionDecision

RunKind = Literal["training", "tuning", "scoring"]
RUN_NAME_PREFIXES = {"training": "", "tuning": "tune-", "scoring": "score-"}
log = logging.getLogger(__name__)


class _HideUserErrorTracebacks(logging.Filter):
    """Prefect logs every failure with its traceback; for errors the user can fix, the message is the story."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and (isinstance(error, NeuroflowError) or is_store_failure(error)):
            record.exc_info = None
            record.exc_text = None
        return True


class _DropStoreFailureDumps(logging.Filter):
    """MLflow's SQL store logs a refused write as forty lines of SQL and traceback; the run ends with one paragraph
    that says it (`store_failure`), so the dump is left out."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return error is None or not is_store_failure(error)


for _name in ("prefect.flow_runs", "prefect.task_runs"):
    logging.getLogger(_name).addFilter(_HideUserErrorTracebacks())
logging.getLogger("mlflow.store.db.utils").addFilter(_DropStoreFailureDumps())


def artifact_key(kind: str, model_name: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes; one key per kind and model keeps a history."""
    return re.sub(r"[^a-z0-9-]+", "-", f"{kind}-{model_name}".lower()).strip("-")


@dataclass(frozen=True)
class RunRecord:
    """One flow run's MLflow run, and where a person finds it (MLflow and Prefect)."""

    client: MlflowClient
    settings: Settings
    kind: RunKind
    run_id: str
    experiment_id: str
    started: str
    url: str
    prefect_url: str | None

    def registered(self, version: str, decision: PromotionDecision) -> dict[str, Any]:
        """The fields every outcome of a run that registered `version` shares (see `RegisteredOutcome`)."""
        return {
            "run_id": self.run_id,
            "experiment_id": self.experiment_id,
            "run_url": self.url,
            "model_name": self.settings.model_name,
            "version": version,
            "promoted": decision.promoted,
            "champion_version": decision.champion_after,
            "decision": decision.reason,
        }

    def note(self, markdown: str) -> None:
        """The run's description in the MLflow UI."""
        tracking.note(self.client, self.run_id, markdown)

    def publish(self, markdown: str) -> None:
        """The run's story on the Prefect flow run page (Artifacts tab), versioned under one key per model."""
        model = self.settings.model_name
        create_markdown_artifact(
            key=artifact_key(f"{self.kind}-summary", model),
            markdown=markdown,
            description=f"{self.kind.capitalize()} of {model}: data, metrics, promotion decision.",
        )


@contextmanager
def recorded_run(client: MlflowClient, settings: Settings, kind: RunKind) -> Iterator[RunRecord]:
    """Open the MLflow run of this flow run and close it however the body ends; a user-fixable failure is noted on
    the run and published before it propagates."""
    started = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    prefect_url = url_for("flow-run", obj_id=prefect_run.id) if prefect_run.id else None
    prefix = RUN_NAME_PREFIXES[kind]
    run_id = tracking.start_run(
        client,
        settings,
        run_name=f"{prefix}{settings.data.name}-{started}",
        tags={
            "neuroflow.kind": kind,
            "neuroflow.prefect_flow_run_id": str(prefect_run.id),
            "neuroflow.prefect_flow_run": str(prefect_run.name),
        }
        | ({"neuroflow.prefect_flow_run_url": prefect_url} if prefect_url else {}),
    )
    experiment_id = client.get_run(run_id).info.experiment_id
    record = RunRecord(
        client,
        settings,
        kind,
        run_id,
        experiment_id,
        started,
        settings.tracking.run_url(experiment_id, run_id),
        prefect_url,
    )
    create_link_artifact(
        key=artifact_key("mlflow-run", settings.model_name),
        link=record.url,
        link_text=f"MLflow run {run_id[:8]} ({settings.model_name})",
        description=f"The MLflow run of this {kind}: parameters, per-epoch metrics, plots, data report, model.",
    )
    succeeded = False
    try:
        yield record
        succeeded = True
    except Exception as error:
        failure = error if isinstance(error, NeuroflowError) else store_failure(error, settings.tracking)
        if failure is None:
            raise
        with failing_fast(), contextlib.suppress(Exception):  # the store may be what failed
            record.publish(
                f"## {kind.capitalize()} of {settings.model_name} failed\n\n{failure}\n\n[MLflow run]({record.url})"
            )
            record.note(f"**Failed.** {failure}")
        if failure is error:
            raise
        raise failure from None
    finally:
        with failing_fast() if not succeeded else contextlib.nullcontext():
            try:
                tracking.finish_run(client, run_id, succeeded)
            except Exception as error:
                if succeeded:
                    raise
                log.warning("could not mark the MLflow run %s FAILED: %s", run_id, short_reason(error))


@contextmanager
def store_errors(tracking_settings: TrackingSettings) -> Iterator[None]:
    """A tracking store that did not answer, or refused a write, ends the flow with one paragraph naming it."""
    try:
        yield
    except NeuroflowError:
        raise
    except Exception as error:
        failure = store_failure(error, tracking_settings)
        if failure is None:
            raise
        raise failure from None
