"""Only the errors a place means are caught: an unexpected one (a bug) surfaces as itself, never relabelled as the
registry being down, the data being changed, a model trained before references, or the prediction log failing."""

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from neuroflow.cli.output import friendly_errors
from neuroflow.core.errors import MonitoringError, RegistryUnavailableError
from neuroflow.pipelines.bookkeeping.unchanged import unchanged_since
from neuroflow.pipelines.steps import evaluation, monitoring


class Bug(Exception):
    """Stands for a mistake in neuroflow's own code."""


class BuggyClient:
    """A registry client whose every call hits a bug (not a failure of the registry)."""

    tracking_uri = "sqlite:///nowhere.db"

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            raise Bug(f"{name} is broken")

        return call


def test_a_bug_in_the_champions_read_is_not_the_registry_being_down() -> None:
    with pytest.raises(Bug):
        evaluation.load_comparable(BuggyClient(), "m", "1", None)  # type: ignore[arg-type]


def test_a_bug_in_the_unchanged_check_is_not_changed() -> None:
    with pytest.raises(Bug):
        unchanged_since(BuggyClient(), "m", "champion", "abc")
    assert unchanged_since(Registry(ConnectionError("refused")), "m", "champion", "abc") is None


class Registry:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def get_model_version_by_alias(self, name: str, alias: str) -> Any:
        raise self.error


def test_a_bug_in_reading_the_reference_is_not_a_model_trained_before_references(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: Any) -> Any:
        raise Bug("the reader is broken")

    monkeypatch.setattr(monitoring, "read_run_file", broken)
    with pytest.raises(Bug):
        monitoring.load_reference(object(), "run")

    def missing(*args: Any) -> Any:
        raise FileNotFoundError("reference/reference.parquet")

    monkeypatch.setattr(monitoring, "read_run_file", missing)
    with pytest.raises(MonitoringError, match="has no drift reference"):
        monitoring.load_reference(object(), "run")


def test_a_bug_in_the_prediction_logs_feedback_route_is_a_500_not_a_503(tmp_path: Path) -> None:
    from neuroflow.core.predictionlog import store_errors

    assert OSError in store_errors() and Bug not in store_errors()
    assert not issubclass(Bug, store_errors())


def test_the_command_line_says_a_bug_is_a_bug_and_where() -> None:
    app = typer.Typer()

    @app.command()
    @friendly_errors
    def train(verbose: bool = False) -> None:
        evaluation.load_comparable(BuggyClient(), "m", "1", None)  # type: ignore[arg-type]

    result = CliRunner().invoke(app, [])
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    # the innermost frame of neuroflow's own code, whatever called it
    assert "internal error in core.store.describe_version: Bug: get_model_version is broken" in said
    assert "rerun with --verbose for the traceback" in said
    assert "registry" not in said.split("Bug:")[0]
    with pytest.raises(Bug):
        CliRunner().invoke(app, ["--verbose"], catch_exceptions=False)


def test_a_registry_failure_is_still_the_registrys() -> None:
    from mlflow.exceptions import MlflowException

    class Down:
        tracking_uri = "http://127.0.0.1:1"

        def get_model_version(self, *args: Any) -> Any:
            raise MlflowException("API request to /model-versions/get failed with exception Connection refused")

    with pytest.raises(RegistryUnavailableError):
        evaluation.load_comparable(Down(), "m", "1", None)  # type: ignore[arg-type]


def test_a_bug_in_the_smoke_checks_registry_read_is_not_the_registrys_fault(monkeypatch: pytest.MonkeyPatch) -> None:
    """In the checking process: a registry that fails is `registry_failed` (the gate leaves the version undecided);
    a bug is not, and the trainer reports the process's failure with its last lines."""
    from mlflow.exceptions import MlflowException

    from neuroflow.core import store
    from neuroflow.core.settings import ServiceSettings
    from neuroflow.pipelines.steps.smoke import SmokeJob, run_job

    job = SmokeJob("sqlite:///nowhere.db", None, "m", "1", [[0.5]], ServiceSettings().model_dump(mode="json"))

    def down(*args: Any) -> Any:
        raise MlflowException("API request to /model-versions/get failed with exception Connection refused")

    monkeypatch.setattr(store, "describe_version", down)
    result = run_job(job)
    assert not result.passed and result.registry_failed and "could not read v1 from the registry" in result.reason

    def bug(*args: Any) -> Any:
        raise Bug("describe_version is broken")

    monkeypatch.setattr(store, "describe_version", bug)
    with pytest.raises(Bug):
        run_job(job)
