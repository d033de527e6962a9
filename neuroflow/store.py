"""The MLflow tracking store and model registry as neuroflow reads them: one client, the champion alias, and what a
registered version is. The service, the CLI and the flows all read the registry through here.

"No such alias" and "the registry failed" are different answers: the first is ModelNotFoundError, the second
RegistryUnavailableError, and no caller may take one for the other.
"""

import os
from dataclasses import dataclass, field
from typing import Any

from neuroflow.errors import ModelNotFoundError, RegistryUnavailableError
from neuroflow.settings import TrackingSettings

# For the service: fail fast on an unreachable tracking server, it retries on its own schedule.
FAIL_FAST_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
# MLflow's error codes for "there is no such model, version or alias".
NOT_FOUND_CODES = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")


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


def mlflow_client(tracking: TrackingSettings, fail_fast: bool = False) -> Any:
    """An MLflow client for the configured store and registry (also set as MLflow's default for this process).
    `fail_fast` bounds MLflow's HTTP retries unless the environment already sets them."""
    if fail_fast:
        for name, value in FAIL_FAST_DEFAULTS.items():
            os.environ.setdefault(name, value)
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(tracking.tracking_uri)
    if tracking.registry_uri:
        mlflow.set_registry_uri(tracking.registry_uri)
    return MlflowClient(tracking.tracking_uri, tracking.registry_uri)


def champion_version(client: Any, name: str, alias: str) -> str:
    """The version the alias points at now; ModelNotFoundError if none, RegistryUnavailableError if unreachable."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as error:
        if error.error_code in NOT_FOUND_CODES:
            raise ModelNotFoundError(
                f"registered model {name!r} has no {alias!r} alias yet; train one with `neuroflow train`"
            ) from None
        raise RegistryUnavailableError(
            f"MLflow registry at {client.tracking_uri} is unreachable or failing: {reason(error)}"
        ) from None
    except (OSError, ConnectionError) as error:
        raise RegistryUnavailableError(
            f"MLflow registry at {client.tracking_uri} is unreachable: {reason(error)}"
        ) from None


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


def reason(error: BaseException) -> str:
    """A short reason: 'connection refused' rather than three lines of urllib3 retry text."""
    text = str(error)
    if "Connection refused" in text or "NewConnectionError" in text:
        return "connection refused"
    if "timed out" in text.lower():
        return "timed out"
    lines = text.strip().splitlines()
    return lines[0][:300] if lines else type(error).__name__
