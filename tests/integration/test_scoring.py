"""Batch scoring and the pyfunc contract, as users meet them: a model trained on a CSV with whole-number columns,
scored by `neuroflow predict`, `scoring_flow`, `mlflow.pyfunc` and `mlflow models predict` on that same file."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest

from neuroflow.pipelines.flows import scoring_flow, training_flow
from tests.integration.conftest import Store, run_cli

pytestmark = pytest.mark.integration

MODEL = "churn"


def churn_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    """Ages and visit counts as whole numbers (int64 in pandas), an income with cents, a plan, a 0/1 target."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, rows),
            "visits": rng.integers(0, 30, rows),
            "income": rng.normal(50_000, 15_000, rows).round(2),
            "plan": rng.choice(["basic", "pro", "team"], rows),
        }
    )
    young_idle = (frame["age"] < 35) & (frame["visits"] < 10)
    frame["churned"] = (young_idle | ((frame["plan"] == "basic") & (frame["income"] < 45_000))).astype(int)
    return frame


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, prefect_api_url: str) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("scoring")
    store = Store(root)
    data = root / "churn.csv"
    churn_frame(600).to_csv(data, index=False)
    assert pd.read_csv(data)["age"].dtype == "int64"
    settings = store.settings(
        data={"path": data, "target": "churned"}, tracking={"model_name": MODEL}, network={"epochs": 5, "patience": 2}
    )
    outcome = training_flow(settings=settings)
    return {"store": store, "root": root, "data": data, "version": outcome.version, "api": prefect_api_url}


def model_args(trained: dict[str, Any]) -> list[str]:
    return ["--model-name", MODEL, "--tracking-uri", trained["store"].tracking_uri]


def test_the_pyfunc_and_mlflow_models_predict_take_the_training_file_itself(trained: dict[str, Any]) -> None:
    """Before, MLflow's schema enforcement refused the training CSV ("Can not safely convert int64 to float64")."""
    mlflow.set_tracking_uri(trained["store"].tracking_uri)
    frame = pd.read_csv(trained["data"])
    scored = mlflow.pyfunc.load_model(f"models:/{MODEL}/{trained['version']}").predict(frame)
    assert scored["prediction"].dtype == "int64"  # the target's own type: compare with the labels as they are
    assert (scored["prediction"] == frame["churned"]).mean() >= 0.7
    out = trained["root"] / "mlflow-predictions.json"
    env = {"MLFLOW_TRACKING_URI": trained["store"].tracking_uri}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("mlflow")), "models", "predict",
         "-m", f"models:/{MODEL}/{trained['version']}", "-i", str(trained["data"]), "-t", "csv",
         "-o", str(out), "--env-manager", "local"],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    answers = json.loads(out.read_text())["predictions"]
    assert [row["prediction"] for row in answers] == scored["prediction"].tolist()


def test_neuroflow_predict_scores_csv_and_parquet_in_chunks_with_rejects(trained: dict[str, Any]) -> None:
    root = trained["root"]
    frame = churn_frame(300, seed=5).drop(columns="churned")
    frame.insert(0, "customer_id", range(1000, 1300))
    frame = frame.astype({"age": object, "plan": object})
    frame.loc[7, "age"] = "unknown"
    frame.loc[120, "plan"] = "enterprise"
    frame.loc[250, "income"] = 1e12
    data = root / "new.csv"
    frame.to_csv(data, index=False)
    out = root / "scored.parquet"
    done = run_cli(["predict", "--data", str(data), "-o", str(out), "--chunk-rows", "64", *model_args(trained)], root,
                   trained["api"])  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "scored 297 of 300 rows" in done.stdout and "3 row(s) refused" in done.stdout, done.stdout
    scored = pd.read_parquet(out)
    assert len(scored) == 297 and scored["prediction"].dtype == "int64"
    assert set(scored["model_version"]) == {trained["version"]}
    assert {"customer_id", "probability_0", "probability_1"} <= set(scored.columns)
    rejects = pd.read_csv(root / "scored.rejects.csv")
    assert list(rejects["row"]) == [8, 121, 251] and list(rejects["customer_id"]) == [1007, 1120, 1250]
    assert rejects["problems"][1].startswith("plan: a category never seen in training; expected one of: basic, pro")
    # the same rows as Parquet in, CSV out, only the id kept: the same answers
    good = frame.drop(index=[7, 120, 250]).astype({"age": "int64", "plan": str})
    good.to_parquet(root / "new.parquet")
    again = root / "scored.csv"
    done = run_cli(["predict", "--data", str(root / "new.parquet"), "-o", str(again), "--keep", "customer_id",
                    *model_args(trained)], root, trained["api"])  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    by_csv = pd.read_csv(again)
    assert list(by_csv.columns) == ["customer_id", "prediction", "probability_0", "probability_1", "model_version"]
    assert by_csv["prediction"].tolist() == scored["prediction"].tolist()
    assert np.allclose(by_csv["probability_1"], scored["probability_1"], atol=1e-9)


def test_neuroflow_predict_on_a_local_dask_cluster(trained: dict[str, Any]) -> None:
    """--dask-workers 2: partitions scored by two worker processes into a partitioned Parquet folder."""
    root = trained["root"]
    data = root / "dask.csv"
    churn_frame(400, seed=7).drop(columns="churned").to_csv(data, index=False)
    out = root / "dask-scored.parquet"
    done = run_cli(["predict", "--data", str(data), "-o", str(out), "--dask-workers", "2", "--chunk-rows", "100",
                    *model_args(trained)], root, trained["api"])  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "scoring on Dask" in done.stdout and "scored 400 of 400 rows" in done.stdout, done.stdout
    assert out.is_dir() and len(pd.read_parquet(out)) == 400


def test_neuroflow_predict_strict_and_command_line_mistakes(trained: dict[str, Any]) -> None:
    root = trained["root"]
    frame = churn_frame(50, seed=6).drop(columns="churned").astype({"age": object})
    frame.loc[3, "age"] = "old"
    data = root / "strict.csv"
    frame.to_csv(data, index=False)
    done = run_cli(["predict", "--data", str(data), "-o", str(root / "strict-out.csv"), "--strict",
                    *model_args(trained)], root, trained["api"])  # fmt: skip
    assert done.returncode != 0, done.stdout
    assert "row 4: age: must be a number, not text or another kind of value" in done.stderr, done.stderr[-2000:]
    assert not (root / "strict-out.csv").exists()
    started = time.monotonic()
    done = run_cli(["predict", "--data", str(root / "nope.csv"), "-o", str(root / "x.txt"), *model_args(trained)],
                   root, trained["api"])  # fmt: skip
    assert done.returncode != 0 and time.monotonic() - started < 20
    assert "--data" in done.stderr and "does not exist" in done.stderr and ".csv or .parquet" in done.stderr
    assert "Traceback" not in done.stderr


def test_scoring_flow_records_what_each_version_scored(trained: dict[str, Any]) -> None:
    store = trained["store"]
    settings = store.settings(
        tracking={"model_name": MODEL},
        scoring={"data_path": trained["data"], "output_dir": trained["root"] / "scored"},
    )
    outcome = scoring_flow(settings=settings)
    assert (outcome.rows, outcome.scored, outcome.rejected, outcome.version) == (600, 600, 0, trained["version"])
    assert Path(outcome.output).is_file() and len(pd.read_parquet(outcome.output)) == 600
    run = store.client().get_run(outcome.run_id)
    assert run.data.tags["neuroflow.kind"] == "scoring" and run.info.run_name.startswith("score-")
    assert run.data.tags["neuroflow.scored_model_version"] == trained["version"]
    assert run.data.metrics["rows_scored"] == 600 and run.data.metrics["rows_rejected"] == 0
    assert "Scored 600 of 600 rows" in run.data.tags["mlflow.note.content"]
    logged = mlflow.artifacts.load_dict(f"runs:/{outcome.run_id}/scoring.json")
    assert logged["input_digest"] and logged["model_version"] == trained["version"]
