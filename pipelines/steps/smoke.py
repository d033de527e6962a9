"""The smoke test before the alias moves: load a registered version the way the service does, in a fresh process,
from the registry as a reader would, answer its logged input example and compare with what training predicted.

A version that fails to load, or answers differently from the network that was trained, is never promoted: this is
TFX's InfraValidator idea for neuroflow's own serving path. The checking process is started before it is needed
(`SmokeChecker`), so its imports overlap the training, and then answers one job on its standard input.

    python -m neuroflow.pipelines.steps.smoke    # reads one job (JSON) on stdin, writes one result (JSON) on stdout
"""

import contextlib
import json
import logging
import os
import select
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

PARITY_TOLERANCE = 1e-5
# Beyond the store's own budget: the fresh process imports MLflow, pandas and scikit-learn (a few seconds, longer on
# a busy machine) before it can read anything.
STARTUP_ALLOWANCE_SECONDS = 90.0


@dataclass(frozen=True)
class SmokeJob:
    """What the checking process needs: where the registry is, which version, and what training predicted."""

    tracking_uri: str
    registry_uri: str | None
    name: str
    version: str
    expected: list[list[float]]  # the trained network's outputs on the logged input example
    service: dict[str, Any]  # the service's request limits (no secrets), so the example meets the same rules
    trust_store: bool = False
    store_timeout_seconds: float = 60.0
    tolerance: float = PARITY_TOLERANCE


@dataclass(frozen=True)
class SmokeResult:
    """Whether the version answered its example as training did; why not; and whether the registry was at fault."""

    passed: bool
    reason: str
    seconds: float
    max_difference: float | None = None
    registry_failed: bool = False
    waited_seconds: float | None = None  # how long the trainer waited for the answer: what the check adds to a run

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def expected_outputs(predictor: Any, example: Any) -> list[list[float]]:
    """The trained Keras network's outputs on the example, through the fitted scikit-learn preprocessing: the
    reference the served model must reproduce."""
    outputs = predictor.keras_outputs(predictor.preprocessing.transform(example))
    return [[float(value) for value in row] for row in np.asarray(outputs, dtype="float64")]


def compare(expected: list[list[float]], actual: np.ndarray, tolerance: float) -> tuple[bool, float, str]:
    """Whether the served outputs equal training's to `tolerance`; the largest difference; a sentence saying so."""
    reference = np.asarray(expected, dtype="float64")
    if reference.shape != actual.shape:
        return False, float("inf"), f"it answered {actual.shape} outputs where training gave {reference.shape}"
    difference = float(np.max(np.abs(reference - actual))) if reference.size else 0.0
    if not np.isfinite(actual).all() or difference > tolerance:
        return (
            False,
            difference,
            (
                f"its answers to the logged input example differ from training's by up to {difference:.3g} "
                f"(allowed {tolerance:g})"
            ),
        )
    return True, difference, f"answered the logged input example as training did (max difference {difference:.1e})"


def run_job(job: SmokeJob) -> SmokeResult:
    """In the checking process: read the version from the registry, load it with the service's loader, send the
    example through the service's request parser and inference path, and compare."""
    from ...core.errors import RegistryUnavailableError, RequestError, UntrustedModelError
    from ...core.settings import ServiceSettings, TrackingSettings
    from ...core.store import describe_version, mlflow_client
    from ...core.store import reason as short_reason
    from ...models.loading import load_version
    from ...models.requests import RequestParser, dumps

    started = time.perf_counter()

    def result(passed: bool, why: str, difference: float | None = None, registry: bool = False) -> SmokeResult:
        return SmokeResult(passed, why, round(time.perf_counter() - started, 3), difference, registry)

    tracking = TrackingSettings(
        tracking_uri=job.tracking_uri,
        registry_uri=job.registry_uri,
        store_timeout_seconds=job.store_timeout_seconds,
    )
    from mlflow.exceptions import MlflowException

    try:
        client = mlflow_client(tracking)
        info = describe_version(client, job.name, job.version, None)
    except (MlflowException, OSError) as error:  # the registry's failures; a bug is reported as the process's
        return result(False, f"could not read v{job.version} from the registry: {short_reason(error)}", None, True)
    try:
        loaded = load_version(info, job.trust_store)
    except RegistryUnavailableError as error:
        return result(False, f"could not read v{job.version} from the registry: {error}", None, True)
    except UntrustedModelError as error:
        return result(False, f"the service's loader refused it: {error}")
    except Exception as error:
        return result(False, f"it does not load: {type(error).__name__}: {error}")
    predictor = loaded.predictor
    if loaded.example is None:
        return result(False, f"its logged input example cannot be read: {loaded.example_problem}")
    parser = RequestParser.for_limits(predictor.schema, ServiceSettings(**job.service))
    try:
        records = parser.parse(dumps({"records": loaded.example}))
    except RequestError as error:
        problems = "; ".join(f"{problem.field}: {problem.problem}" for problem in error.problems[:3])
        return result(False, f"the service refuses its own logged input example ({problems})")
    except ValueError as error:  # a value JSON cannot hold (NaN, infinity)
        return result(False, f"its logged input example cannot be read: {error}")
    outputs = predictor.raw_outputs(predictor.encode_records(records))
    passed, difference, why = compare(job.expected, outputs, job.tolerance)
    return result(passed, why, difference)


class SmokeChecker:
    """A fresh Python process, started now so that its imports overlap the training, that checks one version later.

    It is a process of its own so that nothing the trainer holds in memory (the Keras network, the fitted
    preprocessing, imported modules) can stand in for what a reader of the registry gets."""

    def __init__(self) -> None:
        self._started = time.perf_counter()
        # a file, not a pipe, so warnings can never fill it and block; it lives as long as the checker
        self._stderr = tempfile.TemporaryFile("w+")  # noqa: SIM115
        self._process: subprocess.Popen[str] | None = subprocess.Popen(
            [sys.executable, "-m", "neuroflow.pipelines.steps.smoke"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3", "MLFLOW_LOGGING_LEVEL": "WARNING"},
        )

    def connect(self, tracking_uri: str, registry_uri: str | None) -> None:
        """Let the process open the store now (MLflow's first call to a store takes about a second), once the
        trainer has created it: two processes creating one SQLite store at once could collide."""
        self._send({"connect": {"tracking_uri": tracking_uri, "registry_uri": registry_uri}})

    def check(self, job: SmokeJob) -> SmokeResult:
        """Hand the job to the process and wait for its verdict (bounded by the store's budget)."""
        asked = time.perf_counter()
        process = self._process
        if process is None or process.stdout is None:
            raise RuntimeError("this smoke checker has already run its check")
        self._send({"check": asdict(job)})
        deadline = asked + job.store_timeout_seconds + STARTUP_ALLOWANCE_SECONDS
        line = ""
        while not line and process.poll() is None and time.perf_counter() < deadline:
            ready, _, _ = select.select([process.stdout], [], [], 0.5)
            if ready:
                line = process.stdout.readline()
        if not line:
            timed_out = process.poll() is None
            self._stderr.seek(0)  # read what the process said before closing its file
            tail = " ".join(self._stderr.read().strip().splitlines()[-3:])[:500]
            self.close()
            if timed_out:
                return SmokeResult(False, "the checking process did not answer in time", time.perf_counter() - asked)
            return SmokeResult(
                False,
                f"the checking process failed (exit code {process.returncode}): {tail or 'no output'}",
                time.perf_counter() - asked,
            )
        answer = replace(SmokeResult(**json.loads(line)), waited_seconds=round(time.perf_counter() - asked, 3))
        log.info(
            "smoke test of v%s: %s (%.2f s waiting, %.2f s in the fresh process since it started)",
            job.version,
            answer.reason,
            time.perf_counter() - asked,
            time.perf_counter() - self._started,
        )
        return answer

    def _send(self, message: dict[str, Any]) -> None:
        process = self._process
        if process is None or process.stdin is None or process.poll() is not None:
            return  # it has ended; `check` says why
        try:
            process.stdin.write(json.dumps(message) + "\n")
            process.stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    def close(self) -> None:
        """Stop the process: it has answered, or the run ended before the gate."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.kill()
            process.communicate()
        self._stderr.close()

    def __enter__(self) -> "SmokeChecker":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def main() -> None:
    """The checking process: import what loading needs while the trainer trains, open the store when told it
    exists, then answer one job and leave without tearing the interpreter down."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    import mlflow  # noqa: F401  (ahead of the job: the point of starting early)

    from ...core.settings import TrackingSettings
    from ...core.store import mlflow_client
    from ...models import loading  # noqa: F401

    for line in sys.stdin:
        message = json.loads(line)
        if "connect" in message:
            with contextlib.suppress(Exception):  # a store that fails now fails the job, where it is reported
                mlflow_client(TrackingSettings(**message["connect"])).search_registered_models(max_results=1)
        elif "check" in message:
            answer = run_job(SmokeJob(**message["check"]))
            sys.stdout.write(json.dumps(answer.to_json()) + "\n")
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)


if __name__ == "__main__":
    main()
