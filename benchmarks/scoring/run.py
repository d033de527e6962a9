"""Batch scoring benchmark: `neuroflow predict` against `mlflow models predict` on the same model and file, side by side
in one run, with the inference function in process as the floor.

    python benchmarks/scoring/run.py [--rows 1000000] [--big-rows 10000000] [--repeats 3]

A model is trained (`neuroflow train`) on 5,000 rows of a churn-like table (20 columns: whole numbers, amounts, two
categories); a file of `--rows` rows of the same kind is then scored by
  (a) `neuroflow predict --data big.csv -o scored.parquet` (every row checked as the service checks a request),
  (b) `mlflow models predict -m models:/NAME/1 -i big.csv -t csv --env-manager local` (the baseline),
  (f) the floor: `Predictor.predict` on the whole frame in one process (no checks, no writing, file already read).
Wall time and peak memory (max RSS of the process, from /usr/bin/time) are the medians of `--repeats` runs. Then
`neuroflow predict` scores a `--big-rows` file once, to show memory stays flat in file size (target: within 2 GiB).
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

BIN = Path(sys.executable).parent
MODEL = "bench-churn"
TARGETS = {"ratio_a_b": 2.0, "big_peak_gib": 2.0}


def table(rows: int, seed: int) -> pd.DataFrame:
    """A churn-like table: 8 whole-number columns, 10 amounts, 2 categories and a 0/1 target."""
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {f"count_{i}": rng.integers(0, 100, rows) for i in range(8)}
    columns |= {f"amount_{i}": rng.normal(100, 30, rows).round(2) for i in range(10)}
    columns["plan"] = rng.choice(["basic", "pro", "team", "enterprise"], rows)
    columns["region"] = rng.choice(["north", "south", "east", "west", "centre"], rows)
    frame = pd.DataFrame(columns)
    score = frame["count_0"] / 50 - frame["amount_0"] / 100 + (frame["plan"] == "basic") * 0.8
    frame["churned"] = (score + rng.normal(0, 0.3, rows) > 0.9).astype(int)
    return frame


def write_csv(path: Path, rows: int, seed: int, chunk: int = 1_000_000) -> None:
    """A CSV of `rows` rows, written a million at a time (never the whole file in memory)."""
    written = 0
    while written < rows:
        part = table(min(chunk, rows - written), seed + written).drop(columns="churned")
        part.to_csv(path, mode="a" if written else "w", header=not written, index=False)
        written += len(part)


def timed(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MiB (max RSS of the process, from GNU time) and stderr of one run."""
    started = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "MAXRSS_KB %M", *command], env=env, cwd=cwd, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed:\n{done.stderr[-3000:]}")
    peak = int(re.findall(r"MAXRSS_KB (\d+)", done.stderr)[-1]) / 1024
    return seconds, peak, done.stderr


def floor(model_dir: Path, data: Path, repeats: int) -> dict[str, float]:
    """(f) The inference function in this process on the whole file, already read: the least scoring can cost."""
    from neuroflow.models.inference import Predictor

    predictor = Predictor.from_directory(model_dir)
    frame = pd.read_csv(data)
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        predictor.predict(frame)
        samples.append(time.perf_counter() - started)
    return {"seconds": statistics.median(samples), "rows": len(frame)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=10_000_000, help="0 skips the large file")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="neuroflow-bench-scoring-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEUROFLOW_")}
    tracking_uri = f"sqlite:///{work / 'mlflow.db'}"
    env |= {"PATH": f"{BIN}:{env.get('PATH', '')}", "MLFLOW_TRACKING_URI": tracking_uri}
    try:
        print(f"==> training {MODEL} on 5,000 rows", flush=True)
        table(5000, 0).to_csv(work / "train.csv", index=False)
        subprocess.run([str(BIN / "neuroflow"), "train", "--data", "train.csv", "--target", "churned", "--model-name",
                        MODEL, "--epochs", "5", "--tracking-uri", tracking_uri], cwd=work, env=env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        data = work / "big.csv"
        print(f"==> writing {args.rows:,} rows to {data}", flush=True)
        write_csv(data, args.rows, 1)
        size_mb = data.stat().st_size / 2**20
        runs: dict[str, list[tuple[float, float]]] = {"a": [], "b": []}
        commands = {
            "a": [str(BIN / "neuroflow"), "predict", "--data", str(data), "-o", str(work / "scored.parquet"),
                  "--model-name", MODEL, "--tracking-uri", tracking_uri],
            "b": [str(BIN / "mlflow"), "models", "predict", "-m", f"models:/{MODEL}/1", "-i", str(data), "-t", "csv",
                  "-o", str(work / "mlflow.json"), "--env-manager", "local"],
        }  # fmt: skip
        for repeat in range(args.repeats):
            for key, command in commands.items():  # interleaved: the machine's noise falls on both alike
                seconds, peak, _ = timed(command, env, work)
                runs[key].append((seconds, peak))
                print(f"    {key} run {repeat + 1}: {seconds:6.1f} s  peak {peak:7.0f} MiB", flush=True)
        import mlflow

        mlflow.set_tracking_uri(tracking_uri)
        model_dir = Path(mlflow.artifacts.download_artifacts(f"models:/{MODEL}/1", dst_path=str(work / "model")))
        floor_result = floor(model_dir / "artifacts", data, args.repeats)
        big: dict[str, Any] | None = None
        if args.big_rows:
            big_data = work / "bigger.csv"
            print(f"==> writing {args.big_rows:,} rows to {big_data}", flush=True)
            write_csv(big_data, args.big_rows, 2)
            data.unlink()
            seconds, peak, _ = timed([*commands["a"][:3], str(big_data), "-o", str(work / "bigger.parquet"),
                                      *commands["a"][6:]], env, work)  # fmt: skip
            big = {
                "rows": args.big_rows,
                "file_mb": big_data.stat().st_size / 2**20,
                "seconds": seconds,
                "peak_mb": peak,
            }
            print(f"    a on {args.big_rows:,} rows: {seconds:.1f} s  peak {peak:.0f} MiB", flush=True)
        report = summarise(args.rows, size_mb, runs, floor_result, big)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_suffix(".json").write_text(json.dumps(report, indent=2))
    args.output.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))


def summarise(
    rows: int, size_mb: float, runs: dict[str, list[tuple[float, float]]], floor_result: dict[str, float],
    big: dict[str, Any] | None,
) -> dict[str, Any]:  # fmt: skip
    medians = {
        key: {"seconds": statistics.median(s for s, _ in values), "peak_mb": statistics.median(p for _, p in values)}
        for key, values in runs.items()
    }
    for value in medians.values():
        value["rows_per_second"] = rows / value["seconds"]
    ratio = medians["b"]["seconds"] / medians["a"]["seconds"]
    per_run = [b[0] / a[0] for a, b in zip(runs["a"], runs["b"], strict=True)]
    checks = {"ratio_a_b": {"value": ratio, "target": ">= 2.0 (a's rows/s over b's)", "met": ratio >= 2.0}}
    if big is not None:
        gib = big["peak_mb"] / 1024
        checks["big_peak_gib"] = {"value": gib, "target": f"<= 2.0 on {big['rows']:,} rows", "met": gib <= 2.0}
    return {
        "machine": f"{os.cpu_count()} cores; one process each; medians of {len(runs['a'])} interleaved runs",
        "rows": rows,
        "file_mb": size_mb,
        "baseline": "b: mlflow models predict -t csv --env-manager local on the same registered version and file",
        "per_run_ratios": per_run,
        "a": medians["a"],
        "b": medians["b"],
        "floor": {"seconds": floor_result["seconds"], "rows_per_second": rows / floor_result["seconds"]},
        "big": big,
        "checks": checks,
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Machine: {report['machine']}. File: {report['rows']:,} rows x 20 columns, {report['file_mb']:.0f} MB of "
        f"CSV. Baseline: {report['baseline']}.",
        "",
        "| | wall s | rows/s | peak MiB | vs (b) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    b_seconds = report["b"]["seconds"]
    names = {"a": "a neuroflow predict (CSV in, Parquet out, every row checked)", "b": "b mlflow models predict"}
    for key, name in names.items():
        value = report[key]
        lines.append(f"| {name} | {value['seconds']:.1f} | {value['rows_per_second']:,.0f} | {value['peak_mb']:,.0f} "
                     f"| {b_seconds / value['seconds']:.2f}x |")  # fmt: skip
    floor_value = report["floor"]
    floor_ratio = b_seconds / floor_value["seconds"]
    lines.append(f"| f in process: Predictor.predict on the read frame (floor) | {floor_value['seconds']:.1f} "
                 f"| {floor_value['rows_per_second']:,.0f} | | {floor_ratio:.2f}x |")  # fmt: skip
    if report["big"]:
        big = report["big"]
        rate = big["rows"] / big["seconds"]
        lines += ["", f"Large file: {big['rows']:,} rows ({big['file_mb']:,.0f} MB of CSV) scored by (a) in "
                      f"{big['seconds']:.0f} s ({rate:,.0f} rows/s), peak {big['peak_mb']:,.0f} MiB."]  # fmt: skip
    if report.get("per_run_ratios"):
        shown = ", ".join(f"{value:.2f}x" for value in report["per_run_ratios"])
        lines += ["", f"(b) over (a), run by run (interleaved): {shown}."]
    lines += ["", "| target | value | target | met |", "| --- | ---: | --- | --- |"]
    for name, check in report["checks"].items():
        lines.append(f"| {name} | {check['value']:.2f} | {check['target']} | {'yes' if check['met'] else 'NO'} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
