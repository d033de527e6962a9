"""Training benchmark: neuroflow's training against bare Keras, side by side in one run.

    python benchmarks/training/run.py [--repeats 3] [--big-rows 1000000] [--output benchmarks/training/results]

1. Training step: samples per second of `neuroflow.pipelines.training.train_model` (early stopping, per-epoch MLflow
   logging) against a bare `model.fit` of the same compiled network on the same arrays, same batch size.
   Target: ≥ 0.95x.
2. Whole job: wall time of `neuroflow train` on breast_cancer against `bare_keras.py`, the classic script doing the
   same job by hand. Target: ≤ 1.5x. A first run in a new folder (it creates the MLflow store), a second run in the
   same folder, and a run against an already running Prefect server; the imports alone, the epochs each side ran
   before early stopping, and the run's own step times, to say where the difference goes. `--only-job` runs just
   this part (~2 minutes).
3. Throughput on a 1,000,000-row x 20-column synthetic set at batch sizes 32, 256 and 1024 (one epoch each).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from neuroflow.pipelines.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TARGETS = {"step_vs_fit": 0.95, "train_vs_script": 1.5}


def synthetic(rows: int, features: int = 20, seed: int = 0) -> Any:
    import pandas as pd
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=rows, n_features=features, n_informative=12, weights=[0.7, 0.3], random_state=seed
    )
    frame = pd.DataFrame(x.astype("float32"), columns=[f"f{i}" for i in range(features)])
    frame["label"] = y
    return frame


def prepared(frame: Any) -> tuple[Any, Any]:
    from neuroflow.models.schema import infer_schema
    from neuroflow.pipelines.data import Dataset, split_data

    dataset = Dataset("synthetic", "generated", frame, "label", "binary")
    return infer_schema(frame, "label", "binary"), split_data(dataset, 0.2, 0.2, 42)


def ours(schema: Any, split: Any, batch: int, epochs: int, client: Any, run_id: str) -> float:
    """Samples per second of neuroflow's training step, with its MLflow epoch logging."""
    from neuroflow.models.spec import NetworkSpec
    from neuroflow.pipelines import tracking
    from neuroflow.pipelines.training import train_model

    spec = NetworkSpec(batch_size=batch, epochs=epochs, patience=epochs)
    with tracking.epoch_logger(client, run_id) as log_epoch:
        result = train_model(schema, split, spec, 42, [log_epoch])
    return len(split.train_target) * result.epochs_run / result.seconds


def bare(schema: Any, split: Any, batch: int, epochs: int) -> float:
    """Samples per second of `model.fit` on the same network and arrays, nothing around it."""
    from neuroflow.models.network import build_network, seed_everything
    from neuroflow.models.preprocessing import fit_preprocessing
    from neuroflow.models.spec import NetworkSpec
    from neuroflow.pipelines.training import network_targets

    seed_everything(42)
    preprocessing = fit_preprocessing(schema, split.train_features, split.train_target)
    x, vx = preprocessing.transform(split.train_features), preprocessing.transform(split.validation_features)
    y = network_targets(preprocessing, preprocessing.encode_target(split.train_target))
    vy = network_targets(preprocessing, preprocessing.encode_target(split.validation_target))
    network = build_network(preprocessing.n_inputs, "binary", NetworkSpec(batch_size=batch), seed=42)
    started = time.perf_counter()
    network.fit(x, y, validation_data=(vx, vy), epochs=epochs, batch_size=batch, shuffle=True, verbose=0)
    return len(x) * epochs / (time.perf_counter() - started)


def tracking_run(root: Path) -> tuple[Any, str]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{root / 'bench.db'}")
    experiment = client.create_experiment("bench", artifact_location=str(root / "artifacts"))
    return client, client.create_run(experiment).info.run_id


def step_vs_fit(rows: int, batches: list[int], epochs: int, repeats: int, root: Path) -> list[dict[str, Any]]:
    root.mkdir(parents=True, exist_ok=True)
    schema, split = prepared(synthetic(rows))
    client, run_id = tracking_run(root)
    results = []
    for batch in batches:
        samples: dict[str, list[float]] = {"neuroflow": [], "bare": []}
        for _ in range(repeats):  # alternate, so drift on the machine hits both alike
            samples["neuroflow"].append(ours(schema, split, batch, epochs, client, run_id))
            samples["bare"].append(bare(schema, split, batch, epochs))
        neuroflow, fit = statistics.median(samples["neuroflow"]), statistics.median(samples["bare"])
        results.append(
            {
                "rows": rows,
                "train_rows": len(split.train_target),
                "batch": batch,
                "epochs": epochs,
                "neuroflow_samples_per_s": round(neuroflow),
                "bare_fit_samples_per_s": round(fit),
                "ratio": round(neuroflow / fit, 3),
                "runs": repeats,
            }
        )
        print(
            f"  {rows:>9,} rows  batch {batch:>5}: neuroflow {neuroflow:>9,.0f}/s  bare fit {fit:>9,.0f}/s  "
            f"ratio {neuroflow / fit:.3f}",
            flush=True,
        )
    return results


def timed(command: list[str], cwd: Path, env: dict[str, str], output: list[str] | None = None) -> float:
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{completed.stderr[-3000:]}")
    if output is not None:
        output.append(completed.stdout)
    return time.perf_counter() - started


def last_run(workdir: Path) -> tuple[dict[str, float], int]:
    """Step times and epochs of the newest training run in `workdir`'s MLflow store."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("neuroflow")
    assert experiment is not None
    run = client.search_runs([experiment.experiment_id], order_by=["start_time DESC"], max_results=1)[0]
    metrics = run.data.metrics
    steps = {k.removeprefix("step_seconds."): round(v, 2) for k, v in metrics.items() if k.startswith("step_seconds.")}
    return steps, int(metrics["epochs_run"])


def whole_job(repeats: int, root: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEUROFLOW_", "PREFECT_API_URL"))}
    env |= {"PREFECT_HOME": str(root / "prefect-home"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    neuroflow = [str(BIN / "neuroflow"), "train"]
    script = [sys.executable, str(Path(__file__).with_name("bare_keras.py"))]
    port = free_port()
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    served = env | {"PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
    samples: dict[str, list[float]] = {
        "script": [],
        "neuroflow": [],
        "neuroflow_again": [],
        "neuroflow_prefect_server": [],
    }
    steps: dict[str, float] = {}
    epochs: dict[str, list[int]] = {"script": [], "neuroflow": []}
    try:
        time.sleep(8)
        for attempt in range(repeats):
            output: list[str] = []
            samples["script"].append(timed(script, root, env, output))
            epochs["script"].append(int(output[-1].split("epochs")[-1]))
            cold = root / f"cold-{attempt}"
            cold.mkdir()
            samples["neuroflow"].append(timed(neuroflow, cold, env))
            steps, ran = last_run(cold)
            epochs["neuroflow"].append(ran)
            samples["neuroflow_again"].append(timed(neuroflow, cold, env))
            warm = root / f"served-{attempt}"
            warm.mkdir()
            samples["neuroflow_prefect_server"].append(timed(neuroflow, warm, served))
        imports = {
            "script_imports": timed(
                [sys.executable, "-c", "import keras, sklearn.model_selection, sklearn.preprocessing"], root, env
            ),
            "neuroflow_imports": timed(
                [
                    sys.executable,
                    "-c",
                    "import neuroflow.pipelines.flows, neuroflow.pipelines.training, great_expectations",
                ],
                root,
                env,
            ),
        }
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
    medians = {name: round(statistics.median(values), 1) for name, values in samples.items()}
    return {
        **medians,
        "ratio": round(medians["neuroflow"] / medians["script"], 2),
        "ratio_again": round(medians["neuroflow_again"] / medians["script"], 2),
        "ratio_with_prefect_server": round(medians["neuroflow_prefect_server"] / medians["script"], 2),
        "epochs": epochs,
        **{name: round(value, 1) for name, value in imports.items()},
        "neuroflow_steps_s": steps,
        "runs": repeats,
    }


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "### Training step vs bare `model.fit` (same network, arrays and batch size; median of runs)",
        "",
        "| rows (train) | batch | epochs | runs | neuroflow samples/s | bare fit samples/s | ratio (target ≥ 0.95) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in results["step_vs_fit"] + results["big"]:
        lines.append(
            f"| {row['rows']:,} ({row['train_rows']:,}) | {row['batch']} | {row['epochs']} | {row['runs']} | "
            f"{row['neuroflow_samples_per_s']:,} | {row['bare_fit_samples_per_s']:,} | {row['ratio']:.3f} |"
        )
    return "\n".join(lines + job_markdown(results["whole_job"])) + "\n"


def job_markdown(job: dict[str, Any]) -> list[str]:
    steps = ", ".join(f"{name} {seconds} s" for name, seconds in job["neuroflow_steps_s"].items())
    epochs = job.get("epochs", {})
    return [
        "",
        f"### `neuroflow train` on breast_cancer vs the bare Keras script (wall time, median of {job['runs']} runs)",
        "",
        "| bare script | neuroflow train, new folder | ratio (target ≤ 1.5) | again, same folder | ratio "
        "| new folder, running Prefect server | ratio |",
        "|---|---|---|---|---|---|---|",
        f"| {job['script']} s | {job['neuroflow']} s | {job['ratio']} | {job['neuroflow_again']} s | "
        f"{job['ratio_again']} | {job['neuroflow_prefect_server']} s | {job['ratio_with_prefect_server']} |",
        "",
        f"Imports alone: the script's {job['script_imports']} s, neuroflow's {job['neuroflow_imports']} s. "
        f"Epochs before early stopping: the script {epochs.get('script')}, neuroflow {epochs.get('neuroflow')}. "
        f"neuroflow's own step times in its last new-folder run: {steps}.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the step-vs-fit set")
    parser.add_argument("--big-rows", type=int, default=1_000_000)
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("results"))
    parser.add_argument("--only-job", action="store_true", help="only part 2; prints it, writes no results file")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import neuroflow  # noqa: F401  (quiet defaults before TensorFlow loads)

    if args.only_job:
        with tempfile.TemporaryDirectory(prefix="neuroflow-bench-") as scratch:
            print("\n".join(job_markdown(whole_job(args.repeats, Path(scratch)))))
        return
    with tempfile.TemporaryDirectory(prefix="neuroflow-bench-") as scratch:
        root = Path(scratch)
        print(f"1. training step vs bare model.fit, {args.rows:,} rows, 3 epochs", flush=True)
        step = step_vs_fit(args.rows, [32, 256], 3, args.repeats, root / "step")
        print(f"3. throughput on {args.big_rows:,} rows, one epoch", flush=True)
        # batch 32 takes ~20 s an epoch here: one run; the larger batches are quick, so median of the repeats
        big = step_vs_fit(args.big_rows, [32], 1, 1, root / "big32")
        big += step_vs_fit(args.big_rows, [256, 1024], 1, args.repeats, root / "big")
        print("2. neuroflow train vs the bare Keras script", flush=True)
        job_root = root / "job"
        job_root.mkdir()
        job = whole_job(args.repeats, job_root)
        print(f"  script {job['script']} s  neuroflow {job['neuroflow']} s  ratio {job['ratio']}", flush=True)
    results = {"step_vs_fit": step, "big": big, "whole_job": job, "targets": TARGETS}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    args.output.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
