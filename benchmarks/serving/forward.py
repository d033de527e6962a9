"""The NumPy forward pass's cost per row for each preset, in process, on breast_cancer (weights after 3 epochs: the
cost does not depend on them).

    python benchmarks/serving/forward.py      # prints a table; `run.py` adds it to the serving results

Median microseconds per call over 300 calls, for one row (a request) and for 1,000 rows (batch scoring, per row),
for the network alone (`predictor.forward`) and for validated records to the answer (`predict_records`).
"""

import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def median_microseconds(function: Any, repeats: int = 300) -> float:
    function()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1e6)
    return statistics.median(samples)


def forward_costs() -> dict[str, dict[str, float]]:
    """Per preset: µs for one row and per row of 1,000, network only and records to answer."""
    import numpy as np
    from sklearn.datasets import load_breast_cancer

    from neuroflow.core.spec import preset_spec
    from neuroflow.models.schema import infer_schema
    from neuroflow.pipelines.steps.data import Dataset, split_data
    from neuroflow.pipelines.steps.training import train_model

    frame = load_breast_cancer(as_frame=True).frame
    schema = infer_schema(frame, "target", "binary")
    split = split_data(Dataset("breast_cancer", "sklearn", frame, "target", "binary"), 0.2, 0.2, 0)
    rows = frame.drop(columns="target").sample(1000, replace=True, random_state=0)
    records = rows.to_dict(orient="records")
    costs = {}
    for preset in ("classic", "tabular"):
        predictor = train_model(schema, split, preset_spec(preset, epochs=3), 0).predictor
        one, many = predictor.encode(rows.head(1)), predictor.encode(rows)
        costs[preset] = {
            "forward, 1 row (us)": median_microseconds(lambda p=predictor, m=one: p.forward(m)),
            "forward, per row of 1000 (us)": median_microseconds(lambda p=predictor, m=many: p.forward(m), 50) / 1000,
            "records to answer, 1 row (us)": median_microseconds(lambda p=predictor: p.predict_records(records[:1])),
            "parameters": float(
                sum(np.size(array) for layer in predictor.forward.layers for array in layer.arrays().values())
            ),
        }
    return costs


def markdown(costs: dict[str, dict[str, float]]) -> str:
    names = list(next(iter(costs.values())))
    lines = ["| Preset | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for preset, row in costs.items():
        lines.append(
            f"| {preset} | "
            + " | ".join(f"{row[name]:,.1f}" if name != "parameters" else f"{row[name]:,.0f}" for name in names)
            + " |"
        )
    ratio = {name: costs["tabular"][name] / costs["classic"][name] for name in names}
    lines.append("| tabular / classic | " + " | ".join(f"{ratio[name]:.1f}x" for name in names) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    table = markdown(forward_costs())
    Path(__file__).with_name("forward.md").write_text(table)
    print(table)
