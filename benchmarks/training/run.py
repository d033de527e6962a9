"""Training benchmark: neuroflow's training against bare Keras, side by side in one run.

    python benchmarks/training/run.py [--repeats 3] [--big-rows 1000000] [--output benchmarks/training/results]

1. Training step: samples per second of `neuroflow.pipelines.steps.training.train_model` (early stopping, per-epoch
   MLflow logging, a new order every epoch) against a bare `model.fit` of the same compiled network on the same arrays,
   same batch size. Target: ≥ 0.95x. Also on 1,000,000 x 20 at batch sizes 32, 256 and 1024 (one epoch each).
2. (a) The fixed cost: `neuroflow train` on breast_cancer minus `bare_keras.py`, the classic script doing the same
   job by hand, both training the same network for the same 50 epochs. Target: at most 0.75x the script's own wall
   time. (c) The first run in a new folder (MLflow builds its store) is reported beside it. `--only-job` runs just
   this part (~3 minutes).
3. (b) The whole job on a 1,000,000 x 20 CSV against `bare_big.py` (read the CSV, split, scale, fit, evaluate), the
   same network, batch size and epochs. Target: at most 1.15x.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TARGETS = {"step_vs_fit": 0.95, "fixed_cost_vs_script": 0.75, "big_job_vs_script": 1.15}


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
    from neuroflow.pipelines.steps.data import Dataset, split_data

    dataset = Dataset("synthetic", "generated", frame, "label", "binary")
    return infer_schema(frame, "label", "binary"), split_data(dataset, 0.2, 0.2, 42)


def ours(schema: Any, split: Any, batch: int, epochs: int, client: Any, run_id: str) -> float:
    """Samples per second of neuroflow's training step, with its MLflow epoch logging."""
    from neuroflow.core.spec import NetworkSpec
    from neuroflow.pipelines.bookkeeping import tracking
    from neuroflow.pipelines.steps.training import train_model

    spec = NetworkSpec(batch_size=batch, epochs=epochs, patience=epochs)
    with tracking.epoch_logger(client, run_id) as log_epoch:
        result = train_model(schema, split, spec, 42, [log_epoch])
    return len(split.train_target) * result.epochs_run / result.seconds


def bare(schema: Any, split: Any, batch: int, epochs: int) -> float:
    """Samples per second of `model.fit` on the same network and arrays, nothing around it."""
    from neuroflow.core.spec import NetworkSpec
    from neuroflow.models.network import build_network, seed_everything
    from neuroflow.models.preprocessing import fit_preprocessing
    from neuroflow.pipelines.steps.training import network_targets

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


def last_run(workdir: Path) -> dict[str, Any]:
    """Step times, epochs and the smoke test's cost of the newest training run in `workdir`'s MLflow store."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("neuroflow")
    assert experiment is not None
    run = client.search_runs([experiment.experiment_id], order_by=["start_time DESC"], max_results=1)[0]
    metrics = run.data.metrics
    prefix = "system/step_seconds."
    steps = {k.removeprefix(prefix): round(v, 2) for k, v in metrics.items() if k.startswith(prefix)}
    return {
        "steps": steps,
        "epochs": int(metrics["epochs_run"]),
        "smoke_wait_s": round(metrics.get("smoke_test_wait_seconds", float("nan")), 2),
        "smoke_job_s": round(metrics.get("smoke_test_seconds", float("nan")), 2),
    }


def bench_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEUROFLOW_", "PREFECT_API_URL"))}
    return env | {"PREFECT_HOME": str(root / "prefect-home"), "TF_CPP_MIN_LOG_LEVEL": "3"}


def baseline_package(revision: str, into: Path) -> Path:
    """neuroflow as it was at a git `revision`, laid out as the installed package (`neuroflow/` with `core/`,
    `models/`, `pipelines/`, `service/` inside), for PYTHONPATH: Python finds it before this checkout's install."""
    source = into / "source"
    source.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    package = into / "package"
    if (source / "neuroflow").is_dir():  # before the checkout's folders became the package itself
        shutil.copytree(source / "neuroflow", package / "neuroflow")
    for folder in ("core", "cli", "models", "pipelines", "service"):
        if (source / folder).is_dir():
            shutil.copytree(source / folder, package / "neuroflow" / folder)
    return package


def paired(
    script: list[str],
    neuroflow: list[str],
    repeats: int,
    root: Path,
    name: str,
    baseline: tuple[list[str], Path] | None = None,
) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Run the script and neuroflow alternately, `repeats` times, each neuroflow pair in a folder of its own: the
    first run there builds the MLflow store, (c); the second finds it, and is the one compared, (a)/(b). With a
    `baseline` (its command and package folder), an earlier neuroflow runs its own pair beside them. Returns the
    wall times and the last run's own record."""
    env = bench_env(root)
    samples: dict[str, list[float]] = {"script": [], "first_run": [], "neuroflow": []}
    if baseline is not None:
        samples |= {"baseline_first_run": [], "baseline": []}
    record: dict[str, Any] = {}
    for attempt in range(repeats):
        samples["script"].append(timed(script, root, env))
        if baseline is not None:
            command, package = baseline
            folder = root / f"{name}-baseline-{attempt}"
            folder.mkdir()
            old = env | {"PYTHONPATH": str(package)}
            samples["baseline_first_run"].append(timed(command, folder, old))
            samples["baseline"].append(timed(command, folder, old))
        folder = root / f"{name}-{attempt}"
        folder.mkdir()
        samples["first_run"].append(timed(neuroflow, folder, env))
        samples["neuroflow"].append(timed(neuroflow, folder, env))
        record = last_run(folder)
        print(
            f"  {name} {attempt + 1}/{repeats}: "
            + "  ".join(f"{kind} {values[-1]:.1f} s" for kind, values in samples.items()),
            flush=True,
        )
    return samples, record


def summarise(samples: dict[str, list[float]], record: dict[str, Any], repeats: int) -> dict[str, Any]:
    medians = {name: round(statistics.median(values), 2) for name, values in samples.items()}
    # the extra time of each neuroflow run over the script run beside it, then the median: drift hits both alike
    extra = [ours - script for ours, script in zip(samples["neuroflow"], samples["script"], strict=True)]
    extra_first = [ours - script for ours, script in zip(samples["first_run"], samples["script"], strict=True)]
    fixed, fixed_first = statistics.median(extra), statistics.median(extra_first)
    baseline = {}
    if "baseline" in samples:
        extra_baseline = [old - script for old, script in zip(samples["baseline"], samples["script"], strict=True)]
        baseline = {
            "baseline_fixed_cost": round(statistics.median(extra_baseline), 2),
            "baseline_fixed_cost_ratio": round(statistics.median(extra_baseline) / medians["script"], 3),
        }
    return {
        **medians,
        **baseline,
        "fixed_cost": round(fixed, 2),
        "fixed_cost_ratio": round(fixed / medians["script"], 3),
        "ratio": round(medians["neuroflow"] / medians["script"], 3),
        "first_run_fixed_cost": round(fixed_first, 2),
        "first_run_ratio": round(medians["first_run"] / medians["script"], 3),
        "samples": {name: [round(value, 2) for value in values] for name, values in samples.items()},
        "last_run": record,
        "runs": repeats,
    }


def small_job(repeats: int, root: Path, epochs: int = 50, baseline: str | None = None) -> dict[str, Any]:
    """(a) and (c): breast_cancer, both sides training the same network for the same `epochs` (no early stop); with
    `baseline`, neuroflow at that git revision too (its fixed cost is what today's must not outgrow)."""
    budget = ["--epochs", str(epochs), "--patience", str(epochs)]
    script = [sys.executable, str(Path(__file__).with_name("bare_keras.py")), str(epochs), str(epochs)]
    train = [str(BIN / "neuroflow"), "train", *budget]
    earlier = None
    if baseline is not None:
        earlier = (train, baseline_package(baseline, root / "baseline"))  # runs before `--force` existed: no rule
    samples, record = paired(script, [*train, "--force"], repeats, root, "small", earlier)
    imports = {
        name: timed([sys.executable, "-c", f"import {modules}"], root, bench_env(root))
        for name, modules in (
            ("script_imports", "keras, sklearn.model_selection, sklearn.preprocessing"),
            ("neuroflow_imports", "neuroflow.pipelines.flows, neuroflow.pipelines.steps.training, great_expectations"),
        )
    }
    facts = {"epochs": epochs, "baseline_revision": baseline}
    return summarise(samples, record, repeats) | facts | {k: round(v, 1) for k, v in imports.items()}


def big_job(rows: int, repeats: int, root: Path, epochs: int = 3, batch: int = 256) -> dict[str, Any]:
    """(b): a `rows` x 20 CSV, both sides reading it, splitting, scaling, training the same network with the same
    batch size and epochs, and evaluating; neuroflow also validates, logs, registers and gates."""
    csv = root / "big.csv"
    synthetic(rows).to_csv(csv, index=False)
    budget = ["--epochs", str(epochs), "--patience", str(epochs), "--batch-size", str(batch), "--force"]
    neuroflow = [str(BIN / "neuroflow"), "train", "--data", str(csv), "--target", "label", *budget]
    script = [sys.executable, str(Path(__file__).with_name("bare_big.py")), str(csv), "label", str(epochs), str(batch)]
    samples, record = paired(script, neuroflow, repeats, root, "big")
    return summarise(samples, record, repeats) | {"rows": rows, "epochs": epochs, "batch": batch}


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
    return "\n".join(lines + job_markdown(results["small_job"], results["big_job"])) + "\n"


def job_markdown(small: dict[str, Any], big: dict[str, Any] | None) -> list[str]:
    run = small["last_run"]
    steps = ", ".join(f"{name} {seconds} s" for name, seconds in run["steps"].items())
    lines = [
        "",
        f"### The whole job against the bare script doing the same steps (wall time, median of {small['runs']} runs)",
        "",
        "| job | bare script | neuroflow train | fixed cost (neuroflow - script) | target "
        "| first run in a new folder |",
        "|---|---|---|---|---|---|",
        f"| (a) breast_cancer, {small['epochs']} epochs both | {small['script']} s | {small['neuroflow']} s | "
        f"{small['fixed_cost']} s = **{small['fixed_cost_ratio']:.2f}x** the script | ≤ 0.75x | "
        f"(c) {small['first_run']} s, fixed cost {small['first_run_fixed_cost']} s "
        f"= {small['first_run_fixed_cost'] / small['script']:.2f}x |",
    ]
    if small.get("baseline_revision"):
        lines.append(
            f"| (a) the same, neuroflow at `{small['baseline_revision']}` (before this round's steps) | "
            f"{small['script']} s | {small['baseline']} s | {small['baseline_fixed_cost']} s = "
            f"**{small['baseline_fixed_cost_ratio']:.2f}x** the script | not to grow | "
            f"{small['baseline_first_run']} s |"
        )
    if big is not None:
        lines.append(
            f"| (b) {big['rows']:,} x 20 CSV, {big['epochs']} epochs, batch {big['batch']} | {big['script']} s | "
            f"{big['neuroflow']} s | {big['fixed_cost']} s; whole job **{big['ratio']:.2f}x** the script "
            "| ≤ 1.15x | "
            f"(c) {big['first_run']} s = {big['first_run_ratio']:.2f}x |"
        )
    lines += [
        "",
        f"Imports alone: the script's {small['script_imports']} s, neuroflow's {small['neuroflow_imports']} s. "
        f"neuroflow's own step times in its last breast_cancer run: {steps}. The smoke test kept the gate waiting "
        f"{run['smoke_wait_s']} s (its fresh process, started while the network trained, spent {run['smoke_job_s']} s "
        "on the check itself).",
    ]
    if big is not None:
        big_steps = ", ".join(f"{name} {seconds} s" for name, seconds in big["last_run"]["steps"].items())
        lines.append(f"\nneuroflow's step times in its last {big['rows']:,}-row run: {big_steps}.")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the step-vs-fit set")
    parser.add_argument("--big-rows", type=int, default=1_000_000)
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("results"))
    parser.add_argument("--only-job", action="store_true", help="only (a) and (c); prints them, writes no results file")
    parser.add_argument(
        "--baseline", metavar="REV", help="also run (a) with neuroflow as it was at this git revision, side by side"
    )
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import neuroflow.core  # noqa: F401  (quiet defaults before TensorFlow loads)

    if args.only_job:
        with tempfile.TemporaryDirectory(prefix="neuroflow-bench-") as scratch:
            print("\n".join(job_markdown(small_job(args.repeats, Path(scratch), baseline=args.baseline), None)))
        return
    with tempfile.TemporaryDirectory(prefix="neuroflow-bench-") as scratch:
        root = Path(scratch)
        print(f"1. training step vs bare model.fit, {args.rows:,} rows, 3 epochs", flush=True)
        step = step_vs_fit(args.rows, [32, 256], 3, args.repeats, root / "step")
        print(f"   throughput on {args.big_rows:,} rows, one epoch", flush=True)
        # batch 32 takes ~20 s an epoch here: one run; the larger batches are quick, so median of the repeats
        big = step_vs_fit(args.big_rows, [32], 1, 1, root / "big32")
        big += step_vs_fit(args.big_rows, [256, 1024], 1, args.repeats, root / "big")
        print("2. (a) and (c): neuroflow train vs the bare Keras script on breast_cancer", flush=True)
        (root / "job").mkdir()
        small = small_job(args.repeats, root / "job", baseline=args.baseline)
        print(f"3. (b): neuroflow train vs the bare script on a {args.big_rows:,}-row CSV", flush=True)
        (root / "bigjob").mkdir()
        large = big_job(args.big_rows, args.repeats, root / "bigjob")
    results = {"step_vs_fit": step, "big": big, "small_job": small, "big_job": large, "targets": TARGETS}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    args.output.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
