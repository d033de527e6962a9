"""`tuning_flow` for real: parallel trials as nested MLflow runs, a failing trial, the best one registered and gated."""

import os
from pathlib import Path
from typing import Any

import pytest

from neuroflow.core.spec import NetworkSpec
from neuroflow.pipelines.flows import task_runner, tuning_flow
from neuroflow.pipelines.steps import training
from tests.integration.conftest import Store, run_cli

pytestmark = pytest.mark.integration

NAME = "neuroflow-breast_cancer"
GRID = {
    "strategy": "grid",
    "trials": 4,
    "parallel": 2,
    "space": {"hidden_units": ["8", "16"], "batch_size": [32, 64]},
}


def children(store: Store, parent_run_id: str) -> list[Any]:
    client = store.client()
    runs = client.search_runs([client.get_run(parent_run_id).info.experiment_id])
    return [run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent_run_id]


def test_two_parallel_trials_nest_under_one_run_and_a_failing_one_does_not_stop_the_search(
    tmp_path: Path, prefect_api_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_train = training.train_model

    def train_or_fail(schema: Any, split: Any, spec: NetworkSpec, *args: Any) -> Any:
        if spec.hidden_units == (8,) and spec.batch_size == 64:
            raise RuntimeError("out of memory (simulated)")
        return real_train(schema, split, spec, *args)

    monkeypatch.setattr(training, "train_model", train_or_fail)
    store = Store(tmp_path)
    settings = store.settings(network={"epochs": 30, "patience": 1}, tuning=GRID)
    outcome = tuning_flow.with_options(task_runner=task_runner(2))(settings)

    assert outcome.statuses.get("failed") == 1
    assert {run.data.tags["neuroflow.trial_process"].split(":")[1] for run in children(store, outcome.run_id)} == {
        str(os.getpid())
    }  # threads of this process
    assert outcome.promoted and outcome.version == "1"
    nested = children(store, outcome.run_id)
    assert sorted(run.info.run_name for run in nested) == ["trial-01", "trial-02", "trial-03", "trial-04"]
    by_status = {run.data.tags["neuroflow.trial_status"]: run for run in nested}
    failed = by_status.pop("failed")
    assert failed.info.status == "FAILED" and "out of memory" in failed.data.tags["neuroflow.trial_error"]
    for run in nested:
        if run.data.tags["neuroflow.trial_status"] == "failed":
            continue
        assert run.info.status == "FINISHED"
        stopped_early = run.data.metrics["epochs_run"] < 30
        assert run.data.tags["neuroflow.trial_status"] == ("early-stopped" if stopped_early else "completed")

    client = store.client()
    champion = client.get_model_version_by_alias(NAME, "champion")
    finished = [run for run in nested if run.info.status == "FINISHED"]
    best = min(  # by the validation primary metric, as the gate judges; ties by loss, then number
        finished,
        key=lambda run: (
            -run.data.metrics["validation_roc_auc"],
            run.data.metrics["best_val_loss"],
            int(run.data.tags["neuroflow.trial"]),
        ),
    )
    assert champion.run_id == best.info.run_id  # the registered model is the best trial's
    assert client.get_run(outcome.run_id).data.tags["neuroflow.best_trial"] == best.data.tags["neuroflow.trial"]
    # trials are scored on validation rows; only the chosen one is scored on the test rows, after the search
    for run in finished:
        assert "validation_roc_auc" in run.data.metrics
        assert ("test_roc_auc" in run.data.metrics) is (run.info.run_id == best.info.run_id)
    assert client.get_run(outcome.run_id).data.metrics["test_roc_auc"] == best.data.metrics["test_roc_auc"]
    card = client.get_model_version(NAME, outcome.version).description  # the chosen trial's version has its card
    assert card.startswith(f"# Model card: {NAME} v{outcome.version}") and "permutation importance" in card
    assert "baseline.gap" in best.data.metrics and "neuroflow.baseline" in best.data.tags

    parent = client.get_run(outcome.run_id)
    assert parent.data.metrics["trials_failed"] == 1
    assert parent.data.metrics["best_val_loss"] == pytest.approx(min(r.data.metrics["best_val_loss"] for r in finished))
    assert parent.data.tags["neuroflow.chosen_by"] == "validation_roc_auc"
    artifacts = {item.path for item in client.list_artifacts(outcome.run_id)}
    assert {"trials.csv", "trials_table.json", "plots"} <= artifacts
    assert [item.path for item in client.list_artifacts(outcome.run_id, "plots")] == ["plots/trials.png"]


def test_the_same_search_runs_on_a_local_dask_cluster(tmp_path: Path, prefect_api_url: str) -> None:
    store = Store(tmp_path)
    settings = store.settings(network={"epochs": 4}, tuning=GRID | {"trials": 2})
    outcome = tuning_flow.with_options(task_runner=task_runner(2, dask_workers=2))(settings)
    assert outcome.statuses == {"completed": 2} and outcome.promoted
    nested = children(store, outcome.run_id)
    assert len(nested) == 2 and all(run.info.status == "FINISHED" for run in nested)
    champion = store.client().get_model_version_by_alias(NAME, "champion")
    assert champion.run_id in {run.info.run_id for run in nested}


def test_trials_run_on_an_existing_dask_cluster_by_its_address(tmp_path: Path, prefect_api_url: str) -> None:
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        store = Store(tmp_path)
        settings = store.settings(network={"epochs": 3}, tuning=GRID | {"trials": 2})
        runner = task_runner(1, dask_address=cluster.scheduler_address)
        outcome = tuning_flow.with_options(task_runner=runner)(settings)
    assert outcome.statuses == {"completed": 2}
    nested = children(store, outcome.run_id)
    processes = {run.data.tags["neuroflow.trial_process"].split(":")[1] for run in nested}
    assert len(nested) == 2 and str(os.getpid()) not in processes  # the cluster's workers ran them, not this process


def test_neuroflow_tune_as_a_user_runs_it(tmp_path: Path, prefect_api_url: str) -> None:
    result = run_cli(["tune", "--trials", "2", "--parallel", "2", "--epochs", "3"], tmp_path, prefect_api_url)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 random trials on 2 threads" in result.stderr
    assert result.stdout.count("  trial ") == 2 and "val_loss" in result.stdout
    assert "best: trial" in result.stdout and "is now champion" in result.stdout


def test_tune_refuses_a_grid_over_a_range_before_loading_anything(tmp_path: Path, prefect_api_url: str) -> None:
    (tmp_path / "search.yaml").write_text("tuning:\n  strategy: grid\n  space:\n    dropout: {low: 0, high: 0.5}\n")
    result = run_cli(["tune", "--config", "search.yaml"], tmp_path, prefect_api_url)
    assert result.returncode == 1 and "grid search needs a list" in result.stderr
    assert "Traceback" not in result.stderr
