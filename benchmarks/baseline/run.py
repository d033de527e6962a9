"""Network against the scikit-learn baselines, side by side in one run, on data sets that ship inside packages.

    python benchmarks/baseline/run.py [--repeats 3] [--output benchmarks/baseline/results]

1. Results: for each data set, the network's test score on the primary metric beside the best baseline's (logistic
   or ridge regression, HistGradientBoosting), on the same split and preprocessing, and the gap (+: the network is
   better). The network is neuroflow's default (64, 32, ReLU, Adam, early stopping), data.seed 42.
2. The baseline's cost: its seconds (median of `--repeats`) against the network's training and evaluation seconds
   (median of `--repeats`) on the same data. Target: at most 0.20x. The ratio is conservative: a whole `neuroflow
   train` also validates, logs, registers and gates, so the run costs more than the network's training alone.
3. Dates: a generated daily weather table (730 rows, the label follows the season) trained with its date column
   dropped (what neuroflow did before dates were a kind), as calendar numbers only, and as calendar numbers with the
   cyclic (sin/cos) day of year: the measure behind keeping the cyclic numbers.
"""

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DATASETS = ("breast_cancer", "wine", "diabetes", "iris", "digits")
TARGET_RATIO = 0.20


def bundled(name: str) -> tuple[pd.DataFrame, str]:
    from sklearn import datasets

    frame = getattr(datasets, f"load_{name}")(as_frame=True).frame
    frame.columns = [str(column) for column in frame.columns]
    return frame, "target"


def weather(rows: int = 730, seed: int = 0) -> pd.DataFrame:
    """Daily rows over two years: temperature and humidity with noise; rain is likelier in winter."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2022-01-01", periods=rows, freq="D")
    season = np.cos(2 * np.pi * (days.day_of_year.to_numpy() - 15) / 365.25)  # 1 in mid-January
    humidity = 60 + rng.normal(0, 12, rows)
    temperature = 12 - 8 * season + rng.normal(0, 6, rows)
    rain = 1.4 * season + (humidity - 60) / 25 + rng.normal(0, 0.8, rows) > 0.3
    label = np.where(rain, "rain", np.where(temperature > 18, "sun", "cloud"))
    return pd.DataFrame(
        {"date": days.strftime("%Y-%m-%d"), "temperature": temperature, "humidity": humidity, "weather": label}
    )


def one_run(frame: pd.DataFrame, target: str, schema_change: Any = None, seed: int = 42) -> dict[str, Any]:
    """Train the default network and the baselines on one split; their scores and seconds."""
    from neuroflow.core.settings import NetworkSettings
    from neuroflow.models.schema import infer_schema
    from neuroflow.pipelines.report.baseline import fit_baselines
    from neuroflow.pipelines.steps.data import Dataset, split_data
    from neuroflow.pipelines.steps.evaluation import evaluate_model, primary_metric
    from neuroflow.pipelines.steps.tables import infer_task
    from neuroflow.pipelines.steps.training import train_model

    task = infer_task(frame[target])
    schema = infer_schema(frame, target, task)
    if schema_change is not None:
        schema = schema_change(schema)
    dataset = Dataset("bench", "bench", frame[[*schema.feature_names, target]], target, task)
    split = split_data(dataset, 0.2, 0.2, seed)
    started = time.perf_counter()
    result = train_model(schema, split, NetworkSettings().spec(), seed)
    with tempfile.TemporaryDirectory() as scratch:
        scores, _ = evaluate_model(result.predictor, result.history, split, Path(scratch))
    network_seconds = time.perf_counter() - started
    report = fit_baselines(schema, split, seed, scores)
    metric = primary_metric(task).name
    return {
        "task": task,
        "rows": len(frame),
        "metric": metric,
        "network": scores[metric],
        "baselines": {name: values[metric] for name, values in report.scores.items()},
        "best": report.best,
        "gap": report.gap,
        "verdict": report.verdict,
        "network_seconds": network_seconds,
        "baseline_seconds": report.seconds,
    }


def date_variants() -> dict[str, Any]:
    from neuroflow.models.schema import DATE_PARTS

    def drop(schema: Any) -> Any:
        return replace(schema, features=tuple(c for c in schema.features if c.kind != "datetime"))

    def plain(schema: Any) -> Any:
        parts = tuple(part for part in DATE_PARTS if not part.endswith(("_sin", "_cos")))
        return replace(
            schema, features=tuple(replace(c, parts=parts) if c.kind == "datetime" else c for c in schema.features)
        )

    return {"date dropped (before)": drop, "calendar numbers": plain, "calendar + cyclic (default)": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("results"))
    args = parser.parse_args()
    results: dict[str, Any] = {"datasets": {}, "dates": {}}
    for name in DATASETS:
        frame, target = bundled(name)
        runs = [one_run(frame, target) for _ in range(args.repeats)]
        first = runs[0]
        first["network_seconds"] = statistics.median(run["network_seconds"] for run in runs)
        first["baseline_seconds"] = statistics.median(run["baseline_seconds"] for run in runs)
        first["cost_ratio"] = first["baseline_seconds"] / first["network_seconds"]
        results["datasets"][name] = first
        print(
            f"{name}: {first['verdict']} (baseline {first['baseline_seconds']:.2f} s, network "
            f"{first['network_seconds']:.2f} s, {first['cost_ratio']:.2f}x)",
            flush=True,
        )
    table = weather()
    for label, change in date_variants().items():
        run = one_run(table, "weather", change)
        results["dates"][label] = run
        print(f"weather, {label}: network {run['metric']} {run['network']:.3f}, baselines {run['baselines']}")
    args.output.with_suffix(".json").write_text(json.dumps(results, indent=2, default=float))
    args.output.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))


NAMES = {"logistic_regression": "logistic", "ridge": "ridge", "gradient_boosting": "gradient boosting"}


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "| Data set | Task | Rows | Metric | Network | Best baseline | Gap | Baseline cost |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, run in results["datasets"].items():
        best = run["best"]
        lines.append(
            f"| {name} | {run['task']} | {run['rows']} | {run['metric']} | {run['network']:.3f} | "
            f"{NAMES.get(best, best)} {run['baselines'][best]:.3f} | {run['gap']:+.3f} | "
            f"{run['baseline_seconds']:.2f} s = {run['cost_ratio']:.2f}x the network's {run['network_seconds']:.1f} s |"
        )
    lines += [
        "",
        "Gap: the network's score minus the best baseline's (+: the network is better; RMSE is turned so that + "
        "still means better). Cost: the baselines against the network's training and evaluation alone, a stricter "
        f"yardstick than the target (at most about {TARGET_RATIO:.0%} of a whole run on neuroflow's bundled data "
        "sets: breast_cancer, wine, diabetes).",
        "",
        "| Weather table (date column) | Network macro F1 | Logistic | Gradient boosting |",
        "|---|---|---|---|",
    ]
    for label, run in results["dates"].items():
        lines.append(
            f"| {label} | {run['network']:.3f} | {run['baselines'].get('logistic_regression', float('nan')):.3f} | "
            f"{run['baselines'].get('gradient_boosting', float('nan')):.3f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
