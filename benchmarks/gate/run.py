"""Gate benchmark: how often the promotion gate promotes a challenger that is really no better, against one that is.

    python benchmarks/gate/run.py [--challengers 10] [--output benchmarks/gate/results]

On each table, one split (data seed 42) and one champion; then challengers scored on the same test rows:
- **no better**: the same settings as the champion, another network seed (whatever it gains is noise);
- **better**: a stronger network where the champion is a weaker one, on a harder table (digits, 10 classes): the
  default (tabular) preset over the classic 64-32 network (a modest gain), and over a 4-unit one (a large gain).
Each challenger is judged by the gate's own function (`registry.decide_promotion`) under the old rule (any gain,
`promotion.confidence: 0`) and the new one (the paired bootstrap's lower quantile above zero at 0.9, the default).
The named baseline is the old rule: the table gives each rule's promotion rate side by side, from the same trainings.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
from sklearn.datasets import load_breast_cancer, load_digits

from neuroflow.core.settings import load_settings
from neuroflow.models.inference import Prediction
from neuroflow.models.schema import DataSchema, infer_schema
from neuroflow.pipelines.bookkeeping.registry import decide_promotion
from neuroflow.pipelines.report.advice import paired_gain
from neuroflow.pipelines.steps.data import Dataset, Split, split_data
from neuroflow.pipelines.steps.evaluation import evaluate_predictions, primary_metric
from neuroflow.pipelines.steps.tables import infer_task
from neuroflow.pipelines.steps.training import train_model

CONFIDENCE = 0.9
SMALL = {"preset": "classic", "hidden_units": [4], "epochs": 4, "patience": 2}


def table(name: str) -> tuple[pd.DataFrame, str]:
    loader = {"breast_cancer": load_breast_cancer, "digits": load_digits}[name]
    bunch = loader(as_frame=True)
    frame = bunch.frame.rename(columns={"target": "label"})
    frame.columns = [str(column) for column in frame.columns]
    return frame, "label"


def cases() -> list[tuple[str, str, dict, dict]]:
    """(table, kind, champion's network, challengers' network)."""
    return [
        ("breast_cancer", "no better: same settings, another seed", {}, {}),
        ("digits", "no better: same settings, another seed", {}, {}),
        ("digits", "better: default network over the classic preset", {"preset": "classic"}, {}),
        ("digits", "better: default network over a 4-unit one", SMALL, {}),
    ]


def trained(schema: DataSchema, split: Split, network: dict, seed: int) -> tuple[Prediction, float]:
    """A network trained with `seed` on the split's training rows: its test predictions and primary metric."""
    spec = load_settings(overrides={"network": network} if network else None).network.spec()
    prediction = train_model(schema, split, spec, seed=seed).predictor.predict(split.test_features)
    metric = primary_metric(schema.task).name
    return prediction, evaluate_predictions(schema.task, split.test_target, prediction, schema.classes)[metric]


def run(challengers: int) -> list[dict]:
    rows = []
    for name, kind, champion_network, challenger_network in cases():
        frame, target = table(name)
        schema = infer_schema(frame, target, infer_task(frame[target]))
        split = split_data(Dataset(name, "sklearn", frame, target, schema.task), 0.2, 0.2, seed=42)
        metric = primary_metric(schema.task)

        champion, champion_score = trained(schema, split, champion_network, 0)
        old = new = 0
        gains = []
        started = time.perf_counter()
        for seed in range(1, challengers + 1):
            prediction, score = trained(schema, split, challenger_network, seed)
            paired = paired_gain(
                schema, split.test_target, prediction, champion, metric.name, metric.greater_is_better, CONFIDENCE,
                500, 42,
            )  # fmt: skip
            old += decide_promotion(metric, "2", score, "1", champion_score, 0.0).promoted
            new += decide_promotion(metric, "2", score, "1", champion_score, 0.0, paired=paired).promoted
            gains.append(round(paired.gain, 4))
            print(f"{name} | {kind} | seed {seed}: {paired.describe()}", file=sys.stderr)
        rows.append(
            {
                "table": name,
                "test rows": len(split.test_target),
                "challenger": kind,
                "metric": metric.name,
                "challengers": challengers,
                "promoted, old rule (any gain)": old,
                f"promoted, paired gate ({CONFIDENCE:g})": new,
                "median gain": float(pd.Series(gains).median()),
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
    return rows


def markdown(rows: list[dict]) -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(row[key]) for key in header) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--challengers", type=int, default=10)
    parser.add_argument("--output", type=Path, default=Path("benchmarks/gate/results"))
    args = parser.parse_args()
    rows = run(args.challengers)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "gate.json").write_text(json.dumps(rows, indent=2))
    (args.output / "gate.md").write_text(markdown(rows) + "\n")
    print(markdown(rows))


if __name__ == "__main__":
    main()
