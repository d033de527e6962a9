"""MLflow's HTTP limits: how often and how long a call to a tracking server is tried, and the credentials it sends.

MLflow takes these from its own environment variables (`MLFLOW_HTTP_REQUEST_*`, `MLFLOW_TRACKING_USERNAME`/`PASSWORD`),
read again at every request; its client takes none of them as an argument. So this is the one module of neuroflow
that writes them, with a canary test (`tests/unit/core/test_mlflowhttp.py`) that fails when MLflow stops reading
them per request. Each client sets the limits it is made with (`apply`), so the client made last decides, never
the first one made; a value the user set in the environment before neuroflow ran is never replaced.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager

RETRIES = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
TIMEOUT = "MLFLOW_HTTP_REQUEST_TIMEOUT"
BACKOFF = "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"
JITTER = "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER"
NAMES = (RETRIES, TIMEOUT, BACKOFF, JITTER)
# For the service: fail fast on an unreachable tracking server, it retries on its own schedule.
FAIL_FAST = {RETRIES: "0", TIMEOUT: "10"}
# After the store has failed once (clean-up calls): one attempt with a short timeout.
AFTER_A_FAULT = {RETRIES: "0", TIMEOUT: "5"}
# The limits the user set before neuroflow wrote any: read once, when this module is first imported.
USER_SET = frozenset(name for name in NAMES if name in os.environ)


def waiting_limits(timeout_seconds: float) -> dict[str, str]:
    """The limits that keep one call to an unreachable server under about half of `timeout_seconds` (by default
    MLflow retries one call for about four minutes): 3 retries 0, 2 and 4 s apart, each attempt at most an eighth of
    the budget. A run gives up at its first such call, and its clean-up calls fail fast."""
    return {
        RETRIES: "3" if timeout_seconds >= 20 else "1",
        BACKOFF: "1",
        JITTER: "0.5",
        TIMEOUT: str(max(2, int(timeout_seconds / 8))),
    }


def apply(limits: dict[str, str]) -> None:
    """Make `limits` MLflow's for the calls that follow, except those the user set."""
    for name, value in limits.items():
        if name not in USER_SET:
            os.environ[name] = value


@contextmanager
def failing_fast() -> Iterator[None]:
    """After the store has failed once: the calls made inside (clean-up) are one attempt with a short timeout; the
    limits before are back afterwards."""
    saved = {name: os.environ.get(name) for name in AFTER_A_FAULT}
    os.environ.update(AFTER_A_FAULT)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def export_credentials(username: str | None, password: str | None) -> None:
    """Hand the tracking server's credentials to MLflow the way it reads them, so that no URI neuroflow logs, prints
    or stores carries them."""
    if username:
        os.environ["MLFLOW_TRACKING_USERNAME"] = username
    if password is not None:
        os.environ["MLFLOW_TRACKING_PASSWORD"] = password
