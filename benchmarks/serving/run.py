"""Serving benchmark: neuroflow's BentoML service against what a user would run instead, side by side in one run.

    python benchmarks/serving/run.py [--duration 8] [--servers a,a0,b,b0,e,e2,c] [--output .../results]

(a) `neuroflow serve` (BentoML) · (a0) the same with /predict through BentoML's per-request dispatch ·
(b) `mlflow models serve --env-manager local` on the same registered version · (b0) MLflow's stock Keras flavor of
the same network, served the same way · (e) the smallest BentoML service calling the same inference function
(BentoML's floor) and (e2) the same with adaptive batching · (c) bare FastAPI + uvicorn calling the same inference
function (the HTTP floor) · (d) the inference function in process · the prediction log's cost: (a) with the log on
(Parquet, the default) and off, both running, loaded in alternating rounds (one-row requests, 8 connections).
Servers are pinned to core 0 and the load generator (`hey`) to core 1; loopback only. One-row and 32-row requests at
1, 8 and 64 connections.
"""

import argparse
import csv
import io
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SERVER_CORE, LOAD_CORE = "0", "1"
MODEL = "neuroflow-breast_cancer"


@dataclass
class Result:
    server: str
    rows: int
    connections: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    requests: int


def post(url: str, body: bytes, timeout: float = 5) -> int:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


class Process:
    """A server pinned to the server core, in its own process group; measures the time to its first 200."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self.name = name
        self.started = time.monotonic()
        with open(log, "wb") as handle:
            self.process = subprocess.Popen(
                ["taskset", "-c", SERVER_CORE, *command],
                env=env,
                cwd=cwd,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.log = log

    def first_ok(self, url: str, body: bytes, timeout: float = 180) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            try:
                if post(url, body, timeout=2) == 200:
                    return time.monotonic() - self.started
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} gave no 200 within {timeout} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


def load(url: str, body_file: Path, connections: int, duration: float) -> Result:
    """`hey` on the load core for `duration` seconds; latencies and status codes from its per-request CSV."""
    command = ["taskset", "-c", LOAD_CORE, "hey", "-z", f"{duration}s", "-c", str(connections), "-m", "POST"]
    command += ["-T", "application/json", "-D", str(body_file), "-o", "csv", url]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=duration + 60).stdout
    rows = list(csv.DictReader(io.StringIO(output)))
    latencies = sorted(float(row["response-time"]) * 1000 for row in rows)
    errors = sum(1 for row in rows if row["status-code"] != "200")
    elapsed = max(float(row["offset"]) + float(row["response-time"]) for row in rows) if rows else duration
    quantile = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")  # noqa: E731
    return Result(
        "", 0, connections, len(rows) / elapsed, quantile(0.5), quantile(0.99), latencies[-1], errors, len(rows)
    )


def in_process(predictor: Any, records: list[dict[str, Any]], frame: Any) -> dict[str, float]:
    """Median microseconds per call of each inference path on the same rows (the choice behind models/forward.py)."""
    import tensorflow as tf

    matrix = predictor.encode(frame)
    network = predictor.network
    compiled = tf.function(lambda x: network(x, training=False), reduce_retracing=True)
    paths = {
        "keras model.predict": lambda: network.predict(matrix, verbose=0),
        "keras predict_on_batch": lambda: network.predict_on_batch(matrix),
        "tf.function": lambda: compiled(tf.constant(matrix)),
        "numpy encode of a frame (preprocessing only)": lambda: predictor.encode(frame),
        "numpy forward pass (network only)": lambda: predictor.forward(matrix),
        "predict_records (d: validated records -> answer)": lambda: predictor.predict_records(records),
    }
    timings = {}
    for name, function in paths.items():
        function()
        repeats = 20 if "model.predict" in name else 300
        samples = []
        for _ in range(repeats):
            started = time.perf_counter()
            function()
            samples.append((time.perf_counter() - started) * 1e6)
        timings[name] = statistics.median(samples)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of load per cell (default 8)")
    parser.add_argument("--connections", default="1,8,64", help="comma-separated (default 1,8,64)")
    parser.add_argument("--rows", default="1,32", help="records per request, comma-separated (default 1,32)")
    parser.add_argument("--servers", default="a,a0,b,b0,e,e2,c", help="servers, comma-separated (default: all of them)")
    parser.add_argument(
        "--log-rounds",
        type=int,
        default=5,
        help="rounds of the prediction log's cost: `a` with the log on and off, alternating (0: skip)",
    )
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results", help="results/prefix")
    args = parser.parse_args()
    if shutil.which("hey") is None or shutil.which("taskset") is None:
        sys.exit("the benchmark needs `hey` and `taskset`: apt-get install hey util-linux (or run `make bench`)")
    connections = [int(value) for value in args.connections.split(",")]
    row_counts = [int(value) for value in args.rows.split(",")]

    work = Path(tempfile.mkdtemp(prefix="neuroflow-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEUROFLOW_")}
    env |= {"PATH": f"{BIN}:{env.get('PATH', '')}", "BENTOML_HOME": str(work / "bentoml")}
    tracking_uri = f"sqlite:///{work / 'mlflow.db'}"
    env["MLFLOW_TRACKING_URI"] = tracking_uri
    print(f"==> training {MODEL} into {work} (the model every server below serves)", flush=True)
    subprocess.run([str(BIN / "neuroflow"), "train", "--tracking-uri", tracking_uri], cwd=work, env=env, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip

    import mlflow
    from sklearn.datasets import load_breast_cancer

    import neuroflow.core  # noqa: F401  (quiet TensorFlow)
    from neuroflow.cli.processes import free_port
    from neuroflow.models.inference import Predictor

    mlflow.set_tracking_uri(tracking_uri)
    client = mlflow.MlflowClient()
    version = client.get_model_version_by_alias(MODEL, "champion").version
    model_dir = Path(mlflow.artifacts.download_artifacts(f"models:/{MODEL}/{version}", dst_path=str(work / "model")))
    predictor = Predictor.from_directory(model_dir / "artifacts", with_network=True)
    keras_uri = log_keras_flavor(predictor, work)

    frame = load_breast_cancer(as_frame=True).frame.drop(columns="target").sample(32, random_state=0)
    records = frame.to_dict(orient="records")
    bodies: dict[tuple[str, int], Path] = {}
    for rows in row_counts:
        chosen = (records * 32)[:rows]
        matrix = predictor.encode(frame.iloc[:rows] if rows <= 32 else frame)
        payloads = {
            "ours": {"records": chosen},
            "pyfunc": {"dataframe_records": chosen},
            "keras": {"inputs": matrix.tolist()},
        }
        for kind, payload in payloads.items():
            bodies[(kind, rows)] = work / f"{kind}-{rows}.json"
            bodies[(kind, rows)].write_text(json.dumps(payload))

    servers: dict[str, tuple[Any, ...]] = {
        "a neuroflow (BentoML)": ("ours", lambda port: [str(BIN / "neuroflow"), "serve", "--port", str(port),
                                                        "--tracking-uri", tracking_uri], "/predict"),
        "a0 neuroflow, /predict through BentoML's dispatch": ("ours", lambda port: [
            str(BIN / "neuroflow"), "serve", "--port", str(port), "--tracking-uri", tracking_uri], "/predict",
            {"NEUROFLOW_SERVICE__DIRECT_PREDICT": "false"}),
        "b mlflow models serve (registered pyfunc)": ("pyfunc", lambda port: [
            str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{MODEL}/{version}", "--env-manager", "local",
            "-h", "127.0.0.1", "-p", str(port), "-w", "1"], "/invocations"),
        "b0 mlflow models serve (stock Keras flavor)": ("keras", lambda port: [
            str(BIN / "mlflow"), "models", "serve", "-m", keras_uri, "--env-manager", "local",
            "-h", "127.0.0.1", "-p", str(port), "-w", "1"], "/invocations"),
        "e bare BentoML service (BentoML's floor)": ("ours", lambda port: [
            str(BIN / "bentoml"), "serve", "benchmarks.serving.bento_floor:BentoFloor", "--host", "127.0.0.1",
            "--port", str(port)], "/predict"),
        "e2 bare BentoML service, adaptive batching": ("ours", lambda port: [
            str(BIN / "bentoml"), "serve", "benchmarks.serving.bento_floor:BentoFloorBatched", "--host", "127.0.0.1",
            "--port", str(port)], "/predict"),
        "c bare FastAPI + uvicorn (floor)": ("ours", lambda port: [
            str(BIN / "uvicorn"), "benchmarks.serving.floor_app:app", "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1", "--no-access-log", "--log-level", "warning"], "/predict"),
    }  # fmt: skip
    env["NEUROFLOW_BENCH_MODEL_DIR"] = str(model_dir / "artifacts")
    env["NEUROFLOW_SERVICE__PREDICTION_LOG"] = str(work / "predictions")  # on, as by default; not in the checkout
    results: list[Result] = []
    ready: dict[str, float] = {}
    wanted = set(args.servers.split(","))
    for name, (kind, command, path, *extra) in servers.items():
        if name.split()[0] not in wanted:
            continue
        port = free_port()
        url = f"http://127.0.0.1:{port}{path}"
        process = Process(name, command(port), env | (extra[0] if extra else {}), ROOT, work / f"{name.split()[0]}.log")
        try:
            ready[name] = process.first_ok(url, bodies[(kind, row_counts[0])].read_bytes())
            print(f"==> {name}: first 200 after {ready[name]:.1f} s", flush=True)
            for rows in row_counts:
                for count in connections:
                    load(url, bodies[(kind, rows)], count, 1.0)  # warm-up
                    result = load(url, bodies[(kind, rows)], count, args.duration)
                    result.server, result.rows = name, rows
                    results.append(result)
                    print(f"    {rows:>2} rows {count:>2} conn  {result.requests_per_second:8.0f} req/s  "
                          f"p50 {result.p50_ms:6.2f}  p99 {result.p99_ms:7.2f}  max {result.max_ms:7.1f} ms  "
                          f"errors {result.errors}", flush=True)  # fmt: skip
        finally:
            process.stop()

    log_cost = None
    if args.log_rounds and "a" in wanted:
        serve = [str(BIN / "neuroflow"), "serve", "--tracking-uri", tracking_uri, "--port"]
        log_cost = logging_cost(serve, env, work, bodies[("ours", 1)], args.log_rounds, args.duration)
    timings = in_process(predictor, records[:1], frame.iloc[:1])
    timings32 = {"predict_records, 32 rows": in_process_records(predictor, records)}
    report = summarise(results, ready, timings | timings32, args, log_cost)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_suffix(".json").write_text(json.dumps(report, indent=2))
    args.output.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    print(f"results written to {args.output.with_suffix('.json')} and {args.output.with_suffix('.md')}")
    shutil.rmtree(work, ignore_errors=True)


def in_process_records(predictor: Any, records: list[dict[str, Any]]) -> float:
    samples = []
    for _ in range(300):
        started = time.perf_counter()
        predictor.predict_records(records)
        samples.append((time.perf_counter() - started) * 1e6)
    return statistics.median(samples)


def log_keras_flavor(predictor: Any, work: Path) -> str:
    """(b0) The same network logged with MLflow's stock Keras flavor (TensorSpec signature: preprocessed input)."""
    import mlflow
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    width = predictor.encoder.width
    signature = ModelSignature(
        Schema([TensorSpec(np.dtype("float32"), (-1, width))]), Schema([TensorSpec(np.dtype("float32"), (-1, 1))])
    )
    mlflow.set_experiment("neuroflow-benchmark")
    with mlflow.start_run(run_name="stock-keras-flavor"):
        info = mlflow.keras.log_model(predictor.network, name="keras_model", signature=signature)
    return info.model_uri


def cell(results: list[Result], prefix: str, rows: int, connections: int) -> Result | None:
    for result in results:
        if result.server.startswith(prefix + " ") and result.rows == rows and result.connections == connections:
            return result
    return None


def logging_cost(
    serve: list[str], env: dict[str, str], work: Path, body: Path, rounds: int, duration: float
) -> dict[str, Any]:
    """One-row throughput at 8 connections of `neuroflow serve` with the prediction log on and off: both servers
    up at once on the server core, loaded in turn (the order alternating each round); medians of the rounds."""
    from neuroflow.cli.processes import free_port

    folder = work / "log-cost"
    variants = {
        "on": {"NEUROFLOW_SERVICE__PREDICTION_LOG": str(folder)},
        "off": {"NEUROFLOW_SERVICE__PREDICTION_LOG": "off"},
    }
    processes, urls = {}, {}
    try:
        for name, extra in variants.items():
            port = free_port()
            urls[name] = f"http://127.0.0.1:{port}/predict"
            processes[name] = Process(f"log {name}", [*serve, str(port)], env | extra, ROOT, work / f"log-{name}.log")
        for name, process in processes.items():
            process.first_ok(urls[name], body.read_bytes())
            load(urls[name], body, 8, 2.0)  # warm-up
        measured: dict[str, list[Result]] = {"on": [], "off": []}
        for round_number in range(rounds):
            for name in ("on", "off") if round_number % 2 == 0 else ("off", "on"):
                result = load(urls[name], body, 8, duration)
                measured[name].append(result)
                print(f"    log {name:<3} round {round_number + 1}: {result.requests_per_second:8.0f} req/s  "
                      f"p99 {result.p99_ms:7.2f} ms  errors {result.errors}", flush=True)  # fmt: skip
    finally:
        for process in processes.values():
            process.stop()
    written = 0
    if (folder / "predictions").exists():
        import pandas as pd

        written = len(pd.read_parquet(folder / "predictions"))
    on, off = (statistics.median(r.requests_per_second for r in measured[name]) for name in ("on", "off"))
    return {
        "rounds": rounds,
        "median_rps_on": on,
        "median_rps_off": off,
        "ratio": on / off,
        "p99_on_ms": statistics.median(r.p99_ms for r in measured["on"]),
        "p99_off_ms": statistics.median(r.p99_ms for r in measured["off"]),
        "errors": sum(r.errors for runs in measured.values() for r in runs),
        "records_logged": written,
        "requests_answered_with_log_on": sum(r.requests for r in measured["on"]),
    }


def summarise(
    results: list[Result],
    ready: dict[str, float],
    timings: dict[str, float],
    args: Any,
    log_cost: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The targets, all ratios against the servers measured in this same run (one-row requests, 8 connections)."""
    a, b, c = (cell(results, key, 1, 8) for key in ("a", "b", "c"))
    ready_of = {name.split()[0]: value for name, value in ready.items()}
    checks: dict[str, Any] = {}
    if log_cost is not None:
        ratio = log_cost["ratio"]
        checks["throughput_log_on_over_off"] = {"value": ratio, "target": ">= 0.95", "met": ratio >= 0.95}
    if a and c:
        ratio = a.requests_per_second / c.requests_per_second
        checks["throughput_a_over_c"] = {"value": ratio, "target": ">= 0.8", "met": ratio >= 0.8}
        p99 = a.p99_ms / c.p99_ms
        checks["p99_a_over_c"] = {"value": p99, "target": "<= 1.5", "met": p99 <= 1.5}
    if a and b:
        ratio = a.requests_per_second / b.requests_per_second
        checks["throughput_a_over_b"] = {"value": ratio, "target": ">= 20", "met": ratio >= 20.0}
    if "a" in ready_of and "c" in ready_of:
        ratio = ready_of["a"] / ready_of["c"]
        checks["first_200_a_over_c"] = {"value": ratio, "target": "<= 1.5", "met": ratio <= 1.5}
    checks["errors_a"] = {"value": sum(r.errors for r in results if r.server.startswith("a ")), "target": "0",
                          "met": all(r.errors == 0 for r in results if r.server.startswith("a "))}  # fmt: skip
    return {
        "machine": f"{os.cpu_count()} cores; server on core {SERVER_CORE}, hey on core {LOAD_CORE}; loopback",
        "duration_s": args.duration,
        "baseline": "c: bare FastAPI + uvicorn calling the same inference function (the floor); "
        "b: mlflow models serve --env-manager local on the same registered version",
        "results": [asdict(result) for result in results],
        "ready_s": ready,
        "in_process_us": timings,
        "checks": checks,
        "prediction_log_cost": log_cost,
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Machine: {report['machine']}; {report['duration_s']:g} s per cell after a 1 s warm-up. "
        f"Baseline: {report['baseline']}.",
        "",
        "| server | rows | conn | req/s | p50 ms | p99 ms | max ms | errors | first 200 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in report["results"]:
        lines.append(
            f"| {result['server']} | {result['rows']} | {result['connections']} | {result['requests_per_second']:.0f} "
            f"| {result['p50_ms']:.2f} | {result['p99_ms']:.2f} | {result['max_ms']:.1f} | {result['errors']} "
            f"| {report['ready_s'][result['server']]:.1f} s |"
        )
    lines += ["", "| target (one-row requests, 8 connections; ratios within this run) | value | target | met |"]
    lines += ["| --- | ---: | ---: | --- |"]
    for name, check in report["checks"].items():
        lines.append(f"| {name} | {check['value']:.2f} | {check['target']} | {'yes' if check['met'] else 'NO'} |")
    cost = report.get("prediction_log_cost")
    if cost:
        lines += [
            "",
            f"Prediction log cost (a, one-row requests, 8 connections, median of {cost['rounds']} alternating rounds): "
            f"{cost['median_rps_on']:.0f} req/s with the log on, {cost['median_rps_off']:.0f} off "
            f"({cost['ratio']:.2f}x); p99 {cost['p99_on_ms']:.2f} vs {cost['p99_off_ms']:.2f} ms; "
            f"{cost['records_logged']:,} records written, warm-ups included, for "
            f"{cost['requests_answered_with_log_on']:,} measured answers.",
        ]
    lines += ["", "| (d) in process, one row unless said | median µs |", "| --- | ---: |"]
    for name, micros in report["in_process_us"].items():
        lines.append(f"| {name} | {micros:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
