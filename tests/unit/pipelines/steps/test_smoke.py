"""The smoke test before the alias moves: a fresh process loads a registered version as the service does, answers
the logged input example, and agrees with what training predicted, or says why not."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from neuroflow.core.settings import ServiceSettings
from neuroflow.core.store import example_records
from neuroflow.pipelines.bookkeeping.registry import register_version
from neuroflow.pipelines.bookkeeping.tracking import log_model
from neuroflow.pipelines.steps.smoke import SmokeChecker, SmokeJob, compare, expected_outputs
from tests.utils.factories import mixed_frame, train_tiny
from tests.utils.store import Store


def test_outputs_agree_within_the_tolerance_and_not_beyond() -> None:
    expected = [[0.25], [0.75]]
    assert compare(expected, np.array([[0.25 + 4e-6], [0.75]]), 1e-5)[0]
    passed, difference, reason = compare(expected, np.array([[0.25 + 2e-4], [0.75]]), 1e-5)
    assert not passed and difference == pytest.approx(2e-4) and "differ from training's" in reason
    assert not compare(expected, np.array([[0.25, 0.5], [0.75, 0.5]]), 1e-5)[0]  # another shape
    assert not compare(expected, np.array([[np.nan], [0.75]]), 1e-5)[0]


def test_the_logged_example_reads_as_request_records(tmp_path: Path) -> None:
    (tmp_path / "input_example.json").write_text(json.dumps({"columns": ["a", "b"], "data": [[1.5, "x"], [2, None]]}))
    assert example_records(tmp_path) == [{"a": 1.5, "b": "x"}, {"a": 2, "b": None}]


@pytest.fixture
def registered(tmp_path: Path, store: Store) -> dict[str, Any]:
    """A mixed-type model (numbers, text, booleans, gaps) logged and registered in a SQLite store, as training does."""
    tiny = train_tiny(mixed_frame(rows=160), "label", "binary")
    split, predictor = tiny.split, tiny.predictor
    uri = store.tracking_uri
    experiment = store.experiment("smoke")
    client = MlflowClient()
    run_id = client.create_run(experiment).info.run_id
    example = split.test_features.head(5).copy()
    # blank cells in the logged example, text and number alike (MLflow writes them as NaN): a client sends null
    example.loc[example.index[0], "city"] = np.nan
    example.loc[example.index[1], "age"] = np.nan
    example.loc[example.index[2], ["income", "member"]] = np.nan
    logged = log_model(run_id, predictor, example, tmp_path / "work")
    version = register_version(client, "smoke", logged.uri, run_id, logged.file_digests)
    folder = next(store.artifacts.rglob("MLmodel")).parent
    return {"uri": uri, "version": version, "expected": expected_outputs(predictor, example), "folder": folder}


def job(registered: dict[str, Any], expected: list[list[float]] | None = None) -> SmokeJob:
    return SmokeJob(
        tracking_uri=registered["uri"],
        registry_uri=None,
        name="smoke",
        version=registered["version"],
        expected=expected if expected is not None else registered["expected"],
        service=ServiceSettings().model_dump(mode="json", exclude={"auth_token"}),
        store_timeout_seconds=10,
    )


def test_a_faithful_version_passes_in_a_fresh_process(registered: dict[str, Any]) -> None:
    with SmokeChecker() as checker:
        checker.connect(registered["uri"], None)
        result = checker.check(job(registered))
    assert result.passed, result.reason
    assert result.max_difference is not None and result.max_difference <= 1e-5
    assert not result.registry_failed


def test_a_version_that_answers_otherwise_than_training_fails(registered: dict[str, Any]) -> None:
    shifted = [[value + 1e-3 for value in row] for row in registered["expected"]]
    with SmokeChecker() as checker:
        result = checker.check(job(registered, shifted))
    assert not result.passed and "differ from training's" in result.reason
    assert result.max_difference == pytest.approx(1e-3, rel=1e-3)


def test_weights_changed_after_logging_are_refused_by_the_services_loader(registered: dict[str, Any]) -> None:
    weights = registered["folder"] / "artifacts" / "weights.npz"
    arrays = dict(np.load(weights, allow_pickle=False))
    arrays = {name: values * 1.01 if values.dtype.kind == "f" else values for name, values in arrays.items()}
    np.savez(weights, **arrays)  # still a valid model, but not the one logged and registered
    with SmokeChecker() as checker:
        result = checker.check(job(registered))
    assert not result.passed and not result.registry_failed
    assert "refused" in result.reason and "weights.npz" in result.reason


def test_a_registry_that_cannot_be_read_is_the_registrys_fault_not_the_models(registered: dict[str, Any]) -> None:
    missing = SmokeJob(**{**job(registered).__dict__, "version": "99"})
    with SmokeChecker() as checker:
        result = checker.check(missing)
    assert not result.passed and result.registry_failed


def test_a_checker_never_asked_leaves_no_process_behind() -> None:
    checker = SmokeChecker()
    process = checker._process
    assert process is not None
    checker.close()
    assert process.poll() is not None
