"""Find the champion in the MLflow registry (or a baked model folder) and load it ready to serve.

No BentoML here; the service wires these functions, and the tests call them directly.
"""

import logging
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from models.inference import Predictor
from models.schema import DataSchema
from neuroflow.errors import ModelNotFoundError, NeuroflowError
from neuroflow.settings import Settings
from service.requests import RequestParser

log = logging.getLogger(__name__)

# Fail fast on an unreachable tracking server; the service retries on its own schedule.
MLFLOW_CLIENT_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


class RegistryUnavailableError(NeuroflowError):
    """The MLflow registry could not be reached."""


@dataclass(frozen=True)
class ModelInfo:
    """Which registered version this is, and what its training run recorded."""

    name: str
    version: str
    alias: str | None
    run_id: str | None
    source: str
    metrics: dict[str, float] = field(default_factory=dict)
    data_digest: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "alias": self.alias,
            "run_id": self.run_id,
            "source": self.source,
            "metrics": self.metrics,
            "data_digest": self.data_digest,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ModelInfo":
        return cls(**data)


@dataclass(frozen=True)
class LoadedModel:
    """Everything one request needs, swapped in as a whole: the predictor, its request parser and its identity."""

    info: ModelInfo
    predictor: Predictor
    parser: RequestParser
    loaded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def version(self) -> str:
        return self.info.version

    @property
    def schema(self) -> DataSchema:
        return self.predictor.schema

    def metadata(self) -> dict[str, Any]:
        """What `GET /metadata` answers."""
        return {
            "model_name": self.info.name,
            "model_version": self.info.version,
            "alias": self.info.alias,
            "run_id": self.info.run_id,
            "source": self.info.source,
            "loaded_at": self.loaded_at,
            "task": self.schema.task,
            "classes": list(self.schema.classes) if self.schema.classes else None,
            "metrics": self.info.metrics,
            "data_digest": self.info.data_digest,
            "schema": self.schema.to_dict(),
        }


def mlflow_client(settings: Settings) -> Any:
    """An MLflow client for the configured tracking server and registry, failing fast when it is down."""
    for name, value in MLFLOW_CLIENT_DEFAULTS.items():
        os.environ.setdefault(name, value)
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(settings.tracking.tracking_uri)
    if settings.tracking.registry_uri:
        mlflow.set_registry_uri(settings.tracking.registry_uri)
    return MlflowClient(settings.tracking.tracking_uri, settings.tracking.registry_uri)


def champion_version(client: Any, name: str, alias: str) -> str:
    """The version the alias points at now; ModelNotFoundError if none, RegistryUnavailableError if unreachable."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            raise ModelNotFoundError(
                f"registered model {name!r} has no {alias!r} alias yet; train one with `neuroflow train`"
            ) from None
        raise RegistryUnavailableError(
            f"MLflow registry at {client.tracking_uri} is unreachable or failing: {_reason(error)}"
        ) from None
    except (OSError, ConnectionError) as error:
        raise RegistryUnavailableError(
            f"MLflow registry at {client.tracking_uri} is unreachable: {_reason(error)}"
        ) from None


def load_registered(client: Any, name: str, version: str, alias: str | None, settings: Settings) -> LoadedModel:
    """Download a registered version and load it for serving (NumPy weights; TensorFlow is not imported)."""
    import mlflow

    info = describe_version(client, name, version, alias)
    with tempfile.TemporaryDirectory(prefix="neuroflow-model-") as scratch:
        local = mlflow.artifacts.download_artifacts(artifact_uri=info.source, dst_path=scratch)
        predictor = Predictor.from_directory(Path(local) / "artifacts")
    return ready(info, predictor, settings)


def load_directory(directory: Path, info: ModelInfo, settings: Settings) -> LoadedModel:
    """Load a model from a folder that holds an MLflow model (a model baked into a Bento)."""
    model_folder = next(path.parent for path in sorted(directory.rglob("MLmodel")))
    return ready(info, Predictor.from_directory(model_folder / "artifacts"), settings)


def ready(info: ModelInfo, predictor: Predictor, settings: Settings) -> LoadedModel:
    parser = RequestParser(predictor.schema, settings.service.max_rows, settings.service.unknown_categories)
    return LoadedModel(info, predictor, parser)


def describe_version(client: Any, name: str, version: str, alias: str | None) -> ModelInfo:
    """The identity and training facts of a registered version (for serving it and for baking it)."""
    model_version = client.get_model_version(name, version)
    return ModelInfo(
        name,
        version,
        alias,
        model_version.run_id,
        f"models:/{name}/{version}",
        **_run_facts(client, model_version.run_id),
    )


def _run_facts(client: Any, run_id: str | None) -> dict[str, Any]:
    if not run_id:
        return {}
    run = client.get_run(run_id)
    metrics = {key: value for key, value in sorted(run.data.metrics.items()) if key.startswith("test_")}
    return {"metrics": metrics, "data_digest": run.data.tags.get("neuroflow.data_digest")}


def _reason(error: BaseException) -> str:
    """A short reason: 'connection refused' rather than three lines of urllib3 retry text."""
    text = str(error)
    if "Connection refused" in text or "NewConnectionError" in text:
        return "connection refused"
    if "timed out" in text.lower():
        return "timed out"
    return _first_line(error)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__
