"""The MLflow tracking store and model registry as neuroflow reads them: one client, the champion alias, and what a
registered version is. The service, the CLI and the flows all read the registry through here.

"No such alias" and "the registry failed" are different answers: the first is ModelNotFoundError, the second
RegistryUnavailableError, and no caller may take one for the other.
"""

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ModelNotFoundError, RegistryUnavailableError, StoreUnavailableError
from .settings import TrackingSettings, redact

# For the service: fail fast on an unreachable tracking server, it retries on its own schedule.
FAIL_FAST_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
# Version tags holding the SHA-256 of each of the model's files (`neuroflow.sha256.weights.npz`, ...).
DIGEST_TAG_PREFIX = "neuroflow.sha256."
EXAMPLE_FILE = "input_example.json"  # what MLflow names the input example it logs with a model
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
    file_digests: dict[str, str] = field(default_factory=dict)  # SHA-256 of the model's files, recorded at registration
    card: str = ""  # the version's description: its model card (Markdown) once training has written it

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "alias": self.alias,
            "run_id": self.run_id,
            "source": self.source,
            "metrics": self.metrics,
            "data_digest": self.data_digest,
            "file_digests": self.file_digests,
            "card": self.card,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ModelInfo":
        return cls(**data)


def export_credentials(tracking: TrackingSettings) -> None:
    """Hand the tracking server's credentials to MLflow the way it reads them (its own environment variables), so
    that no URI neuroflow logs, prints or stores carries them."""
    if tracking.username:
        os.environ["MLFLOW_TRACKING_USERNAME"] = tracking.username
    if tracking.password is not None:
        os.environ["MLFLOW_TRACKING_PASSWORD"] = tracking.password.get_secret_value()


def store_wait_limits(timeout_seconds: float) -> dict[str, str]:
    """MLflow's HTTP settings that keep one call to an unreachable server under about half of `timeout_seconds`
    (by default MLflow retries one call for about four minutes): 3 retries 0, 2 and 4 s apart, each attempt at most
    an eighth of the budget. A run gives up at its first such call, and its clean-up calls fail fast."""
    return {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3" if timeout_seconds >= 20 else "1",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
        "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(max(2, int(timeout_seconds / 8))),
    }


@contextmanager
def failing_fast() -> Iterator[None]:
    """After the store has failed once: the calls made inside (clean-up) are one attempt with a short timeout."""
    saved = {name: os.environ.get(name) for name in FAIL_FAST_DEFAULTS}
    os.environ.update(FAIL_FAST_DEFAULTS | {"MLFLOW_HTTP_REQUEST_TIMEOUT": "5"})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# How the store's failures read in the errors MLflow, requests and SQLAlchemy raise.
UNREACHABLE_SIGNS = (
    "Max retries exceeded",
    "Connection refused",
    "Connection aborted",
    "RemoteDisconnected",
    "NewConnectionError",
    "timed out",
    "TEMPORARILY_UNAVAILABLE",
    "too many 503",
    "API request to",
)
WRITE_REFUSED_SIGNS = ("readonly database", "unable to open database", "disk I/O error", "Permission denied")


def refused_write(error: BaseException) -> str | None:
    """What an error says when the store refused a write ("readonly database", ...), else None."""
    text = f"{type(error).__name__}: {error}"
    return next((sign for sign in WRITE_REFUSED_SIGNS if sign in text), None)


def unreachable(error: BaseException) -> bool:
    """Whether an error says the tracking store did not answer."""
    text = f"{type(error).__name__}: {error}"
    return isinstance(error, ConnectionError | TimeoutError) or any(sign in text for sign in UNREACHABLE_SIGNS)


def is_store_failure(error: BaseException) -> bool:
    """Whether an error says the tracking store did not answer or refused a write (not a bug to show a trace of)."""
    return refused_write(error) is not None or unreachable(error)


def store_failure(error: BaseException, tracking: TrackingSettings) -> "StoreUnavailableError | None":
    """The one-paragraph error for a tracking store that did not answer or refused a write; None for other errors."""
    uri = redact(tracking.tracking_uri)
    if (detail := refused_write(error)) is not None:
        return StoreUnavailableError(
            f"the MLflow store at {uri} refused a write ({detail}). Check that the database file and its folder are "
            "writable by this user and not full, or point --tracking-uri at another store."
        )
    if unreachable(error):
        server = uri.startswith(("http://", "https://"))
        hint = (
            f"Check that the tracking server is running and reachable (`curl {uri.rstrip('/')}/health`)"
            if server
            else "Check the store"
        )
        return StoreUnavailableError(
            f"the MLflow tracking store at {uri} did not answer ({reason(error)}); neuroflow gave up within about "
            f"{tracking.store_timeout_seconds:g} s (tracking.store_timeout_seconds). {hint}, or point --tracking-uri "
            "at another store, then run the command again."
        )
    return None


def mlflow_client(tracking: TrackingSettings, fail_fast: bool = False) -> Any:
    """An MLflow client for the configured store and registry (also set as MLflow's default for this process).
    MLflow's HTTP retries are bounded (`fail_fast`: no retries, for the service; else by `store_timeout_seconds`),
    unless the environment already sets them."""
    limits = FAIL_FAST_DEFAULTS if fail_fast else store_wait_limits(tracking.store_timeout_seconds)
    for name, value in limits.items():
        os.environ.setdefault(name, value)
    export_credentials(tracking)
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
    digests = {
        key.removeprefix(DIGEST_TAG_PREFIX): value
        for key, value in (model_version.tags or {}).items()
        if key.startswith(DIGEST_TAG_PREFIX)
    }
    return ModelInfo(
        name,
        version,
        alias,
        model_version.run_id,
        f"models:/{name}/{version}",
        **_run_facts(client, model_version.run_id),
        file_digests=digests,
        card=model_version.description or "",
    )


def logged_model_id(model_uri: str) -> str | None:
    """The model id a logged model's URI (`models:/m-<id>`) names, which a tracking server requires beside it; None
    for any other URI."""
    return model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None


def digest_tags(digests: dict[str, str]) -> dict[str, str]:
    """The version tags that record a model's file digests at registration."""
    return {f"{DIGEST_TAG_PREFIX}{name}": digest for name, digest in digests.items()}


def download_version(info: ModelInfo, directory: str | Path) -> Path:
    """Download a registered version's files into `directory`; returns the folder of its model files."""
    import mlflow

    local = mlflow.artifacts.download_artifacts(artifact_uri=info.source, dst_path=str(directory))
    return Path(local) / "artifacts"


def example_records(model_folder: Path) -> list[dict[str, Any]]:
    """The input example MLflow logged with a model (a few real rows of the training data), as request records. It is
    JSON, read as data."""
    data = json.loads((Path(model_folder) / EXAMPLE_FILE).read_text())
    return [dict(zip(data["columns"], row, strict=True)) for row in data["data"]]


def _run_facts(client: Any, run_id: str | None) -> dict[str, Any]:
    if not run_id:
        return {}
    run = client.get_run(run_id)
    metrics = {key: value for key, value in sorted(run.data.metrics.items()) if key.startswith("test_")}
    return {"metrics": metrics, "data_digest": run.data.tags.get("neuroflow.data_digest")}


def _endpoint(text: str) -> str:
    match = re.search(r"/api/\d\.\d/mlflow/([\w/-]+)", text)
    return match.group(1) if match else "a call"


def reason(error: BaseException) -> str:
    """A short reason: 'connection refused' rather than three lines of urllib3 retry text."""
    text = redact(str(error))
    if "Connection refused" in text or "NewConnectionError" in text:
        return "connection refused"
    if "timed out" in text.lower():
        return "timed out"
    status = re.search(r"too many (\d{3}) error responses", text)
    if status:
        return f"it answered HTTP {status.group(1)} to every retry of {_endpoint(text)}"
    if any(sign in text for sign in ("RemoteDisconnected", "Connection aborted", "ConnectionResetError")):
        return f"the connection was dropped during {_endpoint(text)}"
    lines = text.strip().splitlines()
    return lines[0][:300] if lines else type(error).__name__
