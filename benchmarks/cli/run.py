"""CLI benchmark: how fast a mistake on the command line is reported, against a full `neuroflow train`, in one run.

    python benchmarks/cli/run.py [--repeats 3] [--output benchmarks/cli/results]

1. Mistakes: the wall time of `neuroflow train` with each mistake the CLI checks before anything slow starts (a target
   that differs in case, a forced task the target cannot be, a missing file or reference schema, a bad setting).
   Baseline: a full `neuroflow train` on breast_cancer (default network) in the same run. Target: each mistake ends
   within 2 s, reported also as a ratio to the full run.
2. Exit: a process that has imported what `neuroflow train` imports (TensorFlow, MLflow, Prefect, Great Expectations)
   and exits (a) the ordinary way, (b) through neuroflow's exit (an exit handler registered first, so it runs last,
   then os._exit), (c) through the private CPython hooks it replaced. Baseline: (a). Reported as ratios.

Medians of --repeats runs; every case of one repeat runs before the next repeat, so load drifts hit all alike.
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

BIN = Path(sys.executable).parent
MISTAKES = {
    "target differs in case": ["--data", "iris.csv", "--target", "Species"],
    "forced --task binary on 3 classes": ["--data", "iris.csv", "--target", "species", "--task", "binary"],
    "data file missing": ["--data", "missing.csv", "--target", "y"],
    "reference schema missing": ["--reference-schema", "nope.json"],
    "invalid setting (--epochs 0)": ["--epochs", "0"],
}
HEAVY = "import tensorflow, mlflow, prefect, great_expectations, neuroflow.pipelines.flows"
EXITS = {
    "a ordinary exit": f"{HEAVY}\nimport sys\nsys.exit(0)",
    "b neuroflow exit (atexit-last + os._exit)": (
        f"from neuroflow.cli.output import install_fast_exit, exit_with\ninstall_fast_exit()\n{HEAVY}\nexit_with(0)"
    ),
    "c private hooks (before)": (
        f"{HEAVY}\nimport atexit, os, threading\nthreading._shutdown()\natexit._run_exitfuncs()\nos._exit(0)"
    ),
}


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - started, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("results"))
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEUROFLOW_", "PREFECT_API_URL"))}
    neuroflow = str(BIN / "neuroflow")
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="neuroflow-bench-cli-") as scratch:
        folder = Path(scratch)
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from sklearn.datasets import load_iris\n"
                "f = load_iris(as_frame=True).frame\n"
                "f['species'] = f.pop('target').map({0: 'setosa', 1: 'versicolor', 2: 'virginica'})\n"
                "f.to_csv('iris.csv', index=False)",
            ],
            cwd=folder,
            check=True,
        )
        for repeat in range(args.repeats):
            for name, mistake in MISTAKES.items():
                seconds, code = timed([neuroflow, "train", *mistake], folder, env)
                assert code == 1, f"{name}: expected exit 1, got {code}"
                times.setdefault(f"mistake: {name}", []).append(seconds)
            run = folder / f"full-{repeat}"
            run.mkdir()
            seconds, code = timed([neuroflow, "train"], run, env | {"PREFECT_HOME": str(run / "prefect")})
            assert code == 0, "the full run failed"
            times.setdefault("full neuroflow train (baseline)", []).append(seconds)
            for name, script in EXITS.items():
                seconds, code = timed([sys.executable, "-c", script], folder, env)
                assert code == 0, f"{name}: exit {code}"
                times.setdefault(f"exit: {name}", []).append(seconds)
            print(f"repeat {repeat + 1}/{args.repeats} done", file=sys.stderr)
    medians = {name: statistics.median(values) for name, values in times.items()}
    full = medians["full neuroflow train (baseline)"]
    ordinary = medians["exit: a ordinary exit"]
    rows = []
    for name, median in medians.items():
        if name.startswith("mistake"):
            ratio, target = median / full, "≤ 2 s"
            met = "yes" if median <= 2.0 else "no"
        elif name.startswith("exit"):
            ratio, target, met = median / ordinary, "", ""
        else:
            ratio, target, met = 1.0, "", ""
        rows.append(
            {"case": name, "median_s": round(median, 3), "ratio": round(ratio, 3), "target": target, "met": met}
        )
    lines = [
        f"Machine: {os.cpu_count()} cores; medians of {args.repeats}. Baselines: mistakes against a full "
        "`neuroflow train` on breast_cancer; exits against the ordinary exit.",
        "",
        "| case | median s | ratio | target | met |",
        "| --- | ---: | ---: | --- | --- |",
        *(f"| {r['case']} | {r['median_s']:.2f} | {r['ratio']:.3f} | {r['target']} | {r['met']} |" for r in rows),
    ]
    args.output.with_suffix(".json").write_text(json.dumps({"repeats": args.repeats, "rows": rows}, indent=2) + "\n")
    args.output.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
