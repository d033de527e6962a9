"""Test isolation: Prefect, MLflow and reports live in temporary folders, never in the user's home or checkout."""

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="neuroflow-tests-"))
# Prefect reads these when it is first imported, so they are set before any test module imports it.
os.environ["PREFECT_HOME"] = str(_SESSION_HOME / "prefect")
os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "120"
os.environ["PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW"] = "ignore"
for _name in [name for name in os.environ if name.startswith("NEUROFLOW_")]:
    del os.environ[_name]

import neuroflow.core  # noqa: E402,F401  (quiet runtime defaults before TensorFlow loads)
from tests.utils.store import Store  # noqa: E402


@pytest.fixture(autouse=True)
def restored_sys_path() -> Iterator[None]:
    """MLflow's in-process model loading puts the model's code folder, with its own partial copy of neuroflow, on
    sys.path; a process a later test spawns (which inherits sys.path) would import that copy instead of the package."""
    saved = list(sys.path)
    yield
    sys.path[:] = saved


@pytest.fixture(scope="session", autouse=True)
def session_cwd() -> Iterator[Path]:
    """Run from a scratch folder: MLflow resolves its default artifact root (./mlruns) against the cwd."""
    previous = Path.cwd()
    scratch = _SESSION_HOME / "cwd"
    scratch.mkdir()
    os.chdir(scratch)
    yield scratch
    os.chdir(previous)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working directory, where the default `sqlite:///mlflow.db` and `reports/` land."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """The one MLflow store fixture: a private SQLite store under the test's folder, MLflow's default while the test
    runs (the previous tracking URI is restored afterwards)."""
    with Store(tmp_path).as_default() as private:
        yield private


@pytest.fixture
def tracking_uri(store: Store) -> str:
    """The private store's URI, for tests that need no more than that."""
    return store.tracking_uri


# The kinds of test that need more than Python, by the fixtures they use (browser tests say so where they are
# declared): `pytest -m "not stack"` is a real choice.
FIXTURE_MARKERS = {"stack": ("stack", "postgres"), "postgres_url": ("postgres",)}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        for fixture, markers in FIXTURE_MARKERS.items():
            if fixture in names:
                for marker in markers:
                    item.add_marker(marker)
