"""The one MLflow store of the tests: a private SQLite database, artifact folder and reports folder under a root."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from neuroflow.core.settings import Settings, load_settings


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Nested dict merge: sections in `extra` update those in `base`."""
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = (
            merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
        )
    return merged


class Store:
    """A private MLflow store and reports folder that one test, or several flow runs of a module, share."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
        self.artifacts = root / "artifacts"
        self.reports = root / "reports"

    def settings(self, **overrides: Any) -> Settings:
        base = {"tracking": {"tracking_uri": self.tracking_uri}, "reports_dir": self.reports}
        return load_settings(overrides=merge(base, overrides))

    def client(self) -> Any:
        from mlflow.tracking import MlflowClient

        return MlflowClient(self.tracking_uri)

    def experiment(self, name: str) -> str:
        """A new experiment whose artifacts land under the root; its id."""
        return str(self.client().create_experiment(name, artifact_location=str(self.artifacts)))

    @contextmanager
    def as_default(self) -> Iterator["Store"]:
        """This store as MLflow's default tracking URI inside; the previous one is back afterwards."""
        import mlflow

        previous = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(self.tracking_uri)
        try:
            yield self
        finally:
            mlflow.set_tracking_uri(previous)
