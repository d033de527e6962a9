"""Does the network earn its place? Both presets against the scikit-learn baselines on real tables, side by side.

    python benchmarks/quality/run.py                  # every table, five split seeds (about an hour on 2 cores)
    python benchmarks/quality/run.py --quick          # three tables, two seeds (a few minutes)
    python benchmarks/quality/run.py --tables penguins,carseats --seeds 3
    python benchmarks/quality/run.py --variant no_periodic='{"numeric_embedding": 0}'   # an ablation column

For each table (`benchmarks/quality/tables.py`: real tables that ship inside installable packages) and each split
seed, on neuroflow's own split (60/20/20, stratified for classes) and through neuroflow's own code path, it trains
the `classic` and `tabular` presets, the baselines neuroflow runs beside every training (logistic or ridge regression
and HistGradientBoosting), and, where `scripts/setup_realmlp.sh` has built its virtualenv, RealMLP's published
defaults (pytabkit) as a reference. It reports the metric (ROC AUC, macro F1, R²; mean ± sd over seeds), each
network's gap to the best baseline of the same seed (+: the network is ahead), training wall time and, for classes,
expected calibration error. Results go to `results.json` and `results.md` beside this file; the README's table is
made from the latter.
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

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent.parent))
REALMLP_VENV = Path(os.environ.get("REALMLP_VENV", Path.home() / ".cache/neuroflow/realmlp-venv"))
METRIC = {"binary": "roc_auc", "multiclass": "f1", "regression": "r2"}
SHOWN = {"roc_auc": "ROC AUC", "f1": "macro F1", "r2": "R²"}
TARGETS = {"median_gap": 0.0, "worst_gap": -0.03, "time_ratio": 3.0}


def realmlp_available() -> bool:
    return (REALMLP_VENV / "bin" / "python").is_file()


def run_realmlp(split: Any, schema: Any, seed: int) -> dict[str, Any] | None:
    """RealMLP's defaults on the same rows, in their own interpreter (PyTorch never enters neuroflow's). It gets the
    columns as neuroflow reads them before scaling (`coerce_features`): numbers as floats, text as text, and a date as
    its calendar numbers, since RealMLP has no date type (an ISO string would be a category of its own per day)."""
    from neuroflow.models.schema import coerce_features

    target, task, classes = schema.target.name, schema.task, schema.classes
    with tempfile.TemporaryDirectory(prefix="neuroflow-realmlp-") as scratch:
        job = Path(scratch)
        for name in ("train", "validation", "test"):
            frame = coerce_features(getattr(split, f"{name}_features"), schema)
            frame[target] = getattr(split, f"{name}_target").to_numpy()
            for column in frame.columns:
                if frame[column].dtype == object:
                    frame[column] = frame[column].astype("string")
            frame.to_parquet(job / f"{name}.parquet")
        spec = {"target": target, "task": task, "seed": seed, "classes": list(classes) if classes else None}
        (job / "job.json").write_text(json.dumps(spec))
        started = time.perf_counter()
        done = subprocess.run(
            [str(REALMLP_VENV / "bin" / "python"), str(HERE / "realmlp_runner.py"), str(job)],
            capture_output=True,
            text=True,
            timeout=3600,
        )
        if done.returncode != 0:
            print(f"    realmlp failed: {done.stderr.strip().splitlines()[-1:]}", flush=True)
            return None
        answer = json.loads((job / "predictions.json").read_text())
        answer["wall_seconds"] = time.perf_counter() - started
        return answer


def score(task: str, truth: pd.Series, prediction: Any, classes: Any) -> dict[str, float]:
    from neuroflow.pipelines.steps.evaluation import evaluate_predictions

    return evaluate_predictions(task, truth, prediction, classes)  # type: ignore[arg-type]


def tuned(schema: Any, split: Any, seed: int, trials: int, metric: str) -> dict[str, float]:
    """`neuroflow tune`'s default space on the tabular preset: each trial scored on the validation rows, the best
    one (by the validation metric) scored on the test rows once; seconds are the whole search's."""
    from dataclasses import replace

    from neuroflow.core.settings import NetworkSettings, TuningSettings
    from neuroflow.pipelines.steps.training import train_model
    from neuroflow.pipelines.steps.tuning import plan_trials, trial_network

    base = NetworkSettings()
    started = time.perf_counter()
    validation = replace(split, test_features=split.validation_features, test_target=split.validation_target)
    best: tuple[float, Any] | None = None
    for trial in plan_trials(TuningSettings(trials=trials, seed=seed), base):
        trained = train_model(schema, split, trial_network(base, trial.knobs).spec(), seed)
        predictor = trained.predictor
        value = score(schema.task, validation.test_target, predictor.predict(validation.test_features), schema.classes)
        if best is None or value[metric] > best[0]:
            best = (value[metric], predictor)
    assert best is not None
    scores = score(schema.task, split.test_target, best[1].predict(split.test_features), schema.classes)
    return {"metric": scores[metric], "ece": scores.get("ece", float("nan")), "seconds": time.perf_counter() - started}


def one_seed(
    table: Any, frame: pd.DataFrame, seed: int, variants: dict[str, Any], realmlp: bool, tune: int = 0
) -> dict:
    """Every model on one split of one table: metric, ECE and seconds each."""
    from neuroflow.core.spec import preset_spec
    from neuroflow.models.inference import Prediction
    from neuroflow.models.schema import infer_schema
    from neuroflow.pipelines.report.baseline import fit_baselines
    from neuroflow.pipelines.steps.data import Dataset, split_data
    from neuroflow.pipelines.steps.training import train_model

    task = table.task
    schema = infer_schema(frame, table.target, task)
    dataset = Dataset(table.name, table.source, frame[[*schema.feature_names, table.target]], table.target, task)
    split = split_data(dataset, 0.2, 0.2, seed)
    metric = METRIC[task]
    results: dict[str, dict[str, float]] = {}
    for name, (preset, overrides) in variants.items():
        started = time.perf_counter()
        trained = train_model(schema, split, preset_spec(preset, **overrides), seed)
        seconds = time.perf_counter() - started
        scores = score(task, split.test_target, trained.predictor.predict(split.test_features), schema.classes)
        results[name] = {
            "metric": scores[metric],
            "ece": scores.get("ece", float("nan")),
            "log_loss": scores.get("log_loss", float("nan")),
            "seconds": seconds,
            "epochs": trained.epochs_run,
        }
    if tune:
        results["tuned"] = tuned(schema, split, seed, tune, metric)
    report = fit_baselines(schema, split, seed, {})
    for name, scores in report.scores.items():
        results[name] = {"metric": scores[metric], "ece": scores.get("ece", float("nan")), "seconds": float("nan")}
    if realmlp:
        answer = run_realmlp(split, schema, seed)
        if answer is not None:
            classes = np.asarray(schema.classes or (), dtype=object)
            if task == "regression":
                prediction = Prediction(np.asarray(answer["values"], dtype="float64"))
            else:
                chances = np.asarray(answer["probabilities"], dtype="float64")
                prediction = Prediction(classes[chances.argmax(axis=1)].astype(str), chances)
            scores = score(task, split.test_target, prediction, schema.classes)
            results["realmlp"] = {
                "metric": scores[metric],
                "ece": scores.get("ece", float("nan")),
                "seconds": float(answer["seconds"]),
            }
    best = max(results[name]["metric"] for name in report.scores)
    for values in results.values():
        values["gap"] = values["metric"] - best
    return results


def summarise(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Mean and sd over seeds of each model's metric, gap, ECE and seconds."""
    summary: dict[str, dict[str, float]] = {}
    for name in runs[0]:
        seeds = [run[name] for run in runs if name in run]
        row: dict[str, float] = {}
        for key in ("metric", "gap", "ece", "seconds", "epochs"):
            values = [seed[key] for seed in seeds if key in seed and not np.isnan(seed[key])]
            if values:
                row[key] = float(statistics.fmean(values))
                row[f"{key}_sd"] = float(statistics.stdev(values)) if len(values) > 1 else 0.0
        summary[name] = row
    return summary


def markdown(results: dict[str, Any], networks: list[str]) -> str:
    """The README's table: each table's metric per model, the networks' gaps, their seconds and ECE."""
    tables = results["tables"]
    lines = [
        f"Seeds: {results['seeds']}; metric mean ± sd over seeds; gap: network - best baseline of the same seed "
        "(+: the network is ahead); seconds: training wall time (mean)."
        + (
            f" RealMLP: its defaults on the first {results['realmlp_seeds']} seeds only (one core, 256 epochs each)."
            if results.get("realmlp_seeds")
            else ""
        ),
        "",
        "| Table | Task | Rows | Metric | "
        + " | ".join(networks)
        + " | logistic / ridge | gradient boosting | RealMLP (pytabkit) | "
        + " | ".join(f"gap {name}" for name in networks)
        + " | "
        + " | ".join(f"s {name}" for name in networks)
        + " | ECE "
        + " / ".join(networks)
        + " |",
        "|" + "---|" * (8 + 3 * len(networks)),
    ]
    for name, entry in tables.items():
        summary = entry["summary"]

        def cell(model: str, key: str = "metric", summary: dict = summary) -> str:
            if model not in summary or key not in summary[model]:
                return "n/a"
            value, spread = summary[model][key], summary[model].get(f"{key}_sd", 0.0)
            return f"{value:.3f} ± {spread:.3f}" if key == "metric" else f"{value:+.3f}"

        linear = "ridge" if entry["task"] == "regression" else "logistic_regression"
        seconds = [f"{summary[n]['seconds']:.1f}" if n in summary else "n/a" for n in networks]
        eces = [f"{summary[n]['ece']:.3f}" if "ece" in summary.get(n, {}) else "n/a" for n in networks]
        lines.append(
            f"| {name} | {entry['task']} | {entry['rows']} | {SHOWN[entry['metric']]} | "
            + " | ".join(cell(n) for n in networks)
            + f" | {cell(linear)} | {cell('gradient_boosting')} | {cell('realmlp')} | "
            + " | ".join(cell(n, "gap") for n in networks)
            + " | "
            + " | ".join(seconds)
            + " | "
            + (" / ".join(eces) if entry["task"] != "regression" else "n/a")
            + " |"
        )
    lines += ["", "| Model | median gap | worst gap | tables ahead or level (>= -0.01) | time vs classic (worst) |"]
    lines.append("|---|---|---|---|---|")
    for model, row in results["overall"].items():
        lines.append(
            f"| {model} | {row['median_gap']:+.3f} | {row['worst_gap']:+.3f} | {row['level_or_ahead']}/{row['tables']} "
            f"| {row.get('worst_time_ratio', float('nan')):.2f}x |"
        )
    return "\n".join(lines) + "\n"


def overall(tables: dict[str, Any], networks: list[str]) -> dict[str, dict[str, float]]:
    """Per model: the median and worst gap over tables, how many are level or ahead, and the worst time ratio."""
    rows: dict[str, dict[str, float]] = {}
    for model in [*networks, "realmlp"]:
        gaps = [entry["summary"][model]["gap"] for entry in tables.values() if model in entry["summary"]]
        if not gaps:
            continue
        row = {
            "median_gap": float(np.median(gaps)),
            "worst_gap": float(min(gaps)),
            "level_or_ahead": sum(gap >= -0.01 for gap in gaps),
            "tables": len(gaps),
        }
        if "classic" in networks and model != "realmlp":
            ratios = [
                entry["summary"][model]["seconds"] / entry["summary"]["classic"]["seconds"]
                for entry in tables.values()
                if model in entry["summary"] and "classic" in entry["summary"]
            ]
            row["worst_time_ratio"] = float(max(ratios))
            row["median_time_ratio"] = float(np.median(ratios))
        rows[model] = row
    return rows


def merge(main_path: Path, realmlp_path: Path, output: Path) -> None:
    """One table from two runs: the networks and baselines of one, RealMLP (with its own seeds' gaps) of the other."""
    results = json.loads(main_path.read_text())
    other = json.loads(realmlp_path.read_text())
    for name, entry in results["tables"].items():
        found = other["tables"].get(name, {}).get("summary", {}).get("realmlp")
        if found:
            entry["summary"]["realmlp"] = found
            entry["realmlp_seeds"] = other["seeds"]
    networks = list(results["variants"]) + (
        ["tuned"] if any("tuned" in e["summary"] for e in results["tables"].values()) else []
    )
    results["overall"] = overall(results["tables"], networks)
    results["realmlp_seeds"] = other["seeds"]
    output.with_suffix(".json").write_text(json.dumps(results, indent=2))
    output.with_suffix(".md").write_text(markdown(results, networks))
    print(markdown(results, networks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="three tables, two seeds")
    parser.add_argument("--tables", help="comma-separated table names (default: all)")
    parser.add_argument("--seeds", type=int, help="split seeds per table (default 5; --quick 2)")
    parser.add_argument("--presets", default="classic,tabular", help="presets to train (default: classic,tabular)")
    parser.add_argument(
        "--variant", action="append", default=[], help="NAME='{json overrides of the tabular preset}', repeatable"
    )
    parser.add_argument("--no-realmlp", action="store_true", help="skip RealMLP even where its venv exists")
    parser.add_argument("--realmlp-seeds", type=int, help="run RealMLP on the first N seeds only (default: all)")
    parser.add_argument("--tune", type=int, default=0, help="also run a random search of N trials (column `tuned`)")
    parser.add_argument("--output", type=Path, default=HERE / "results")
    parser.add_argument(
        "--merge",
        type=Path,
        nargs=2,
        metavar=("MAIN", "REALMLP"),
        help="add REALMLP.json's RealMLP column to MAIN.json",
    )
    args = parser.parse_args()
    if args.merge:
        merge(*args.merge, args.output)
        return

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from benchmarks.quality.tables import QUICK, TABLES

    names = args.tables.split(",") if args.tables else list(QUICK if args.quick else TABLES)
    unknown = sorted(set(names) - set(TABLES))
    if unknown:
        parser.error(f"unknown table(s) {', '.join(unknown)}; known: {', '.join(TABLES)}")
    seeds = args.seeds or (2 if args.quick else 5)
    presets = [preset for preset in args.presets.split(",") if preset and preset != "none"]
    variants: dict[str, tuple[str, dict[str, Any]]] = {preset: (preset, {}) for preset in presets}
    for item in args.variant:
        name, _, overrides = item.partition("=")
        variants[name] = ("tabular", json.loads(overrides))
    realmlp = realmlp_available() and not args.no_realmlp
    networks = list(variants) + (["tuned"] if args.tune else [])
    print(f"{len(names)} tables x {seeds} seeds: {', '.join(networks)}, baselines" + (", realmlp" if realmlp else ""))
    results: dict[str, Any] = {"seeds": seeds, "variants": {k: v[1] for k, v in variants.items()}, "tables": {}}
    started = time.perf_counter()
    for position, name in enumerate(names, start=1):
        table = TABLES[name]
        frame = table.load()
        runs = []
        for seed in range(seeds):
            with_realmlp = realmlp and (args.realmlp_seeds is None or seed < args.realmlp_seeds)
            runs.append(one_seed(table, frame, seed, variants, with_realmlp, args.tune))
            gaps = "  ".join(
                f"{model} {runs[-1][model]['gap']:+.3f}" for model in runs[-1] if model in [*networks, "realmlp"]
            )
            print(f"  {name} seed {seed}: {gaps}", flush=True)
        summary = summarise(runs)
        results["tables"][name] = {
            "task": table.task,
            "rows": len(frame),
            "source": table.source,
            "metric": METRIC[table.task],
            "summary": summary,
            "runs": runs,
        }
        shown = "  ".join(
            f"{model} {summary[model]['metric']:.3f} ({summary[model]['gap']:+.3f})"
            for model in summary
            if model in networks or model == "realmlp"
        )
        print(
            f"[{position}/{len(names)}] {name} ({table.task}, {len(frame)} rows, {SHOWN[METRIC[table.task]]}): "
            f"{shown}  [{time.perf_counter() - started:.0f} s]",
            flush=True,
        )
    results["overall"] = overall(results["tables"], networks)
    args.output.with_suffix(".json").write_text(json.dumps(results, indent=2))
    args.output.with_suffix(".md").write_text(markdown(results, networks))
    print(markdown(results, networks))


if __name__ == "__main__":
    main()
