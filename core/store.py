"""The MLflow tracking store and model registry as neuroflow reads them: one client, the champion alias, and what a
registered version is. The service, the CLI and the flows all read the registry through here.

"No such alias" and "the registry failed" are different answers: the first is ModelNotFoundError, the second
RegistryUnavailableError, and no caller may take one for the other.
"""

import errno
import json
import math
import os
import re
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import mlflowhttp
from .errors import ModelNotFoundError, RegistryUnavailableError, StoreUnavailableError
from .settings import TrackingSettings, redact

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
    """Hand the tracking server's credentials to MLflow (its own environment variables, `mlflowhttp`)."""
    password = tracking.password.get_secret_value() if tracking.password is not None else None
    mlflowhttp.export_credentials(tracking.username, password)


# The errors that say the store did not answer, by type, as (module, class): an error of a library that was never
# imported cannot be one of them, so none is imported to ask. MLflow raises its own MlflowException with these as its
# cause or context; SQLAlchemy's OperationalError is a database that is down, locked or refused the connection.
UNREACHABLE_TYPES = (
    ("requests.exceptions", "ConnectionError"),
    ("requests.exceptions", "Timeout"),
    ("requests.exceptions", "RetryError"),  # the server kept answering 503
    ("urllib3.exceptions", "MaxRetryError"),
    ("urllib3.exceptions", "NewConnectionError"),
    ("urllib3.exceptions", "ProtocolError"),
    ("urllib3.exceptions", "TimeoutError"),
    ("sqlalchemy.exc", "OperationalError"),
    ("sqlalchemy.exc", "TimeoutError"),  # no connection free in the pool
)
# The error code MLflow gives a store that is busy or down (its SQL store's, and a tracking server's 503 answers).
UNAVAILABLE_CODES = frozenset({"TEMPORARILY_UNAVAILABLE"})
# SQLite's primary result codes for a refused write, as the store's failure names them.
SQLITE_REFUSALS = {
    3: "permission denied",
    8: "readonly database",
    10: "disk I/O error",
    13: "database or disk is full",
    14: "unable to open database",
}
OS_REFUSALS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}


def causes(error: BaseException) -> Iterator[BaseException]:
    """The error, then what it was raised from or while handling, down the chain."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def loaded_types(names: tuple[tuple[str, str], ...]) -> tuple[type, ...]:
    """The classes `module.name` among the modules imported so far."""
    found = []
    for module, name in names:
        kind = getattr(sys.modules.get(module), name, None)
        if isinstance(kind, type):
            found.append(kind)
    return tuple(found)


def refused_write(error: BaseException) -> str | None:
    """What the store said when it refused a write (SQLite's "readonly database", a folder without write
    permission, a full disk), else None."""
    for cause in causes(error):
        code = getattr(cause, "sqlite_errorcode", None)
        if isinstance(cause, sqlite3.Error) and isinstance(code, int) and code & 0xFF in SQLITE_REFUSALS:
            return SQLITE_REFUSALS[code & 0xFF]
        if isinstance(cause, OSError) and cause.errno in OS_REFUSALS:
            return os.strerror(cause.errno)
    return None


def unreachable(error: BaseException) -> bool:
    """Whether an error says the tracking store did not answer: a connection refused, dropped or timed out, a
    database that is down or busy, or MLflow's own "temporarily unavailable"."""
    kinds = (ConnectionError, TimeoutError, *loaded_types(UNREACHABLE_TYPES))
    return any(
        isinstance(cause, kinds) or getattr(cause, "error_code", None) in UNAVAILABLE_CODES for cause in causes(error)
    )


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
    mlflowhttp.apply(mlflowhttp.FAIL_FAST if fail_fast else mlflowhttp.waiting_limits(tracking.store_timeout_seconds))
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
    return [
        {column: as_sent(value) for column, value in zip(data["columns"], row, strict=True)} for row in data["data"]
    ]


def as_sent(value: Any) -> Any:
    """A value of the logged example as a client sends it: a blank cell (MLflow writes NaN, text and number columns
    alike) is JSON null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


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
