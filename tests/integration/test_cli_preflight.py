"""Mistakes on the command line end before anything slow starts: the real `neuroflow` command, one paragraph, exit 1,
no traceback, no library noise, and no server, store or report left behind."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.datasets import load_iris

pytestmark = pytest.mark.integration

NEUROFLOW = str(Path(sys.executable).with_name("neuroflow"))


def neuroflow(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEUROFLOW_", "PREFECT_API_URL"))}
    env["PREFECT_HOME"] = str(cwd / "prefect-home")
    return subprocess.run([NEUROFLOW, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mistakes")
    iris = load_iris(as_frame=True).frame
    iris["species"] = iris.pop("target").map({0: "setosa", 1: "versicolor", 2: "virginica"})
    iris.to_csv(root / "iris.csv", index=False)
    (root / "iris.parquet").write_bytes(b"")  # not a Parquet file
    (root / "notes.txt").write_text("")
    return root


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--data", "iris.csv", "--target", "Species"],
            "target column 'Species' is not in iris.csv (did you mean 'species'?)",
        ),
        (["--data", "iris.csv", "--target", " species "], "(did you mean 'species'?)"),
        (
            ["--data", "iris.csv", "--target", "species", "--task", "binary"],
            "--task binary needs a target with exactly 2",
        ),
        (["--data", "iris.csv", "--target", "species", "--task", "regression"], "cannot be a regression target"),
        (["--data", "iris.csv", "--target", "species", "--categorical", "colour"], "categorical column 'colour'"),
        (["--data", "missing.csv", "--target", "y"], "data file missing.csv does not exist"),
        (["--data", "notes.txt", "--target", "y"], "data file notes.txt is empty"),
        (["--data", "iris.parquet", "--target", "y"], "could not read iris.parquet"),
        (
            ["--data", "iris.csv", "--target", "species", "--reference-schema", "nope.json"],
            "reference schema nope.json",
        ),
        (["--data", "iris.csv", "--target", "species", "--reference-schema", "iris.csv"], "is not a neuroflow schema"),
        (["--target", "label"], "has target column 'target', not 'label'"),
        (["--epochs", "0"], "network.epochs"),
    ],
)
def test_a_mistake_is_one_paragraph_before_anything_starts(folder: Path, args: list[str], expected: str) -> None:
    for command in ("train", "tune"):
        result = neuroflow([command, *args], folder)
        assert result.returncode == 1, result.stderr
        assert expected in result.stderr
        assert result.stderr.startswith("error: ") and "\n\n" not in result.stderr.strip()  # one paragraph
        assert "Traceback" not in result.stderr + result.stdout
        assert "loading libraries" not in result.stderr and "Prefect" not in result.stderr  # nothing slow started
        assert "EventsWorker" not in result.stderr
    assert not (folder / "mlflow.db").exists() and not (folder / "reports").exists()
    assert not (folder / "prefect-home" / "prefect.db").exists()


def test_help_version_and_no_global_packages(tmp_path: Path) -> None:
    """The project installs under one name: from a folder outside the checkout, `models`, `service` and `pipelines`
    are not importable, while neuroflow's own subpackages are."""
    for flag in ("--help", "-h"):
        shown = neuroflow([flag], tmp_path)
        assert shown.returncode == 0 and "train" in shown.stdout and "serve" in shown.stdout
    assert neuroflow(["train", "-h"], tmp_path).stdout.count("Examples") == 1
    version = neuroflow(["--version"], tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == "neuroflow 0.1.0"
    for name in ("models", "service", "pipelines"):
        probe = subprocess.run([sys.executable, "-c", f"import {name}"], cwd=tmp_path, capture_output=True, text=True)
        assert probe.returncode == 1 and f"No module named '{name}'" in probe.stderr
    probe = "import neuroflow.models.schema, neuroflow.pipelines.steps.data, neuroflow.models.requests, neuroflow.cli"
    assert subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True).returncode == 0


def test_the_wheel_holds_one_namespace(tmp_path: Path) -> None:
    """What a non-editable install (the Docker image) gets: neuroflow/models, neuroflow/pipelines, neuroflow/service,
    and nothing at the top level but neuroflow."""
    import shutil
    import zipfile

    root = Path(__file__).resolve().parents[2]
    source = tmp_path / "source"  # a copy: building in the checkout would leave build/ and egg-info behind
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "__init__.py"):
        shutil.copy2(root / name, source / name)
    for name in ("core", "cli", "models", "pipelines", "service"):
        shutil.copytree(root / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("neuroflow-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    packages = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert packages == {"neuroflow"}
    for module in ("models/schema.py", "pipelines/flows.py", "service/service.py", "cli/__init__.py"):
        assert f"neuroflow/{module}" in names
