"""Batch scoring on tiny files: every row checked as the service checks a request, rejects kept, chunks, formats."""

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from neuroflow.core.errors import DataLoadError, SchemaMismatchError
from neuroflow.models.requests import RequestError, RequestParser
from neuroflow.pipelines.steps.scoring import RowChecker, ScoringModel, score_file
from tests.utils.factories import messy_frame, mixed_frame, train_tiny


@pytest.fixture(scope="module")
def model() -> dict[str, Any]:
    frame = mixed_frame(rows=300)
    frame["visits"] = np.random.default_rng(1).integers(0, 20, len(frame))  # whole numbers, never missing
    tiny = train_tiny(frame, "label", "binary")
    return {"frame": frame, "predictor": tiny.predictor, "parser": RequestParser(tiny.schema, max_rows=10_000)}


def scoring_model(model: dict[str, Any], version: str) -> ScoringModel:
    return ScoringModel("m", version, model["predictor"], model["parser"])


def messy(frame: pd.DataFrame) -> pd.DataFrame:
    """The training rows with one kind of mistake in every fifth row, as a file from outside would have them."""
    rows = frame.drop(columns="label").head(100).copy().astype({"age": object, "member": object, "visits": object})
    rows.loc[0, "age"] = "old"  # text where a number belongs
    rows.loc[5, "income"] = 1e300  # far outside the training range
    rows.loc[10, "city"] = "tokyo"  # a category never seen
    rows.loc[15, "member"] = "maybe"  # not true/false
    rows.loc[20, "visits"] = None  # missing where training never was
    rows.loc[25, "age"] = "42.5"  # text that reads as a number: fine
    rows.loc[30, "income"] = float("inf")
    return rows


def service_refuses(parser: RequestParser, record: dict[str, Any]) -> bool:
    clean = {key: (None if not isinstance(value, str) and pd.isna(value) else value) for key, value in record.items()}
    if isinstance(clean.get("age"), str):
        with contextlib.suppress(ValueError):
            clean["age"] = float(clean["age"])
    try:
        parser.parse_python([clean])
    except RequestError:
        return True
    return False


def test_rows_are_refused_exactly_when_the_service_would_refuse_them(model: dict[str, Any]) -> None:
    rows = messy(model["frame"])
    problems = RowChecker(model["parser"]).problems(rows)
    expected = {
        i for i, record in enumerate(rows.to_dict(orient="records")) if service_refuses(model["parser"], record)
    }
    assert set(problems) == expected == {0, 5, 10, 15, 20, 30}
    assert problems[0] == ["age: must be a number or null"]
    assert "too far outside the range" in problems[5][0]
    assert problems[10][0].startswith("city: a category never seen in training; expected one of: lyon, nice, paris")
    assert problems[15] == ["member: must be true or false"]
    assert problems[20] == ["visits: must be a number (this feature may not be missing)"]


def test_typed_columns_take_the_quick_look_and_still_agree_with_the_service(model: dict[str, Any]) -> None:
    """Number and category columns as Parquet holds them (float64, int64, text): a vectorised look picks the rows to
    check; the verdicts must equal the service's, row by row."""
    rows = model["frame"].drop(columns="label").head(40).copy()
    rows["visits"] = rows["visits"].astype("float64")
    rows.loc[2, "visits"] = np.nan  # never missing in training
    rows.loc[3, "visits"] = 1e9  # far outside the range
    rows.loc[4, "city"] = None  # missing, as in training: fine
    rows.loc[5, "city"] = "rome"  # never seen
    rows.loc[6, "income"] = -np.inf
    problems = RowChecker(model["parser"]).problems(rows)
    expected = {
        i for i, record in enumerate(rows.to_dict(orient="records")) if service_refuses(model["parser"], record)
    }
    assert set(problems) == expected == {2, 3, 5, 6}


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_file_is_scored_in_chunks_with_rejects_beside_it(model: dict[str, Any], tmp_path: Path, suffix: str) -> None:
    rows = messy(model["frame"])
    rows.insert(0, "customer", [f"c{i}" for i in range(len(rows))])
    data = tmp_path / f"new{suffix}"
    if suffix == ".csv":
        rows.to_csv(data, index=False)
    else:
        rows.astype({"age": str, "member": str, "visits": str}).to_parquet(data)
    seen: list[int] = []
    result = score_file(
        scoring_model(model, "3"),
        data,
        tmp_path / f"scored{suffix}",
        chunk_rows=16,
        progress=seen.append,
    )
    assert (result.rows, result.scored, result.rejected) == (100, 94, 6) and sum(seen) == 100 and len(seen) == 7
    scored = pd.read_csv(result.output) if suffix == ".csv" else pd.read_parquet(result.output)
    assert len(scored) == 94 and set(scored["model_version"].astype(str)) == {"3"}
    assert {"customer", "prediction", "probability_no", "probability_yes"} <= set(scored.columns)
    rejects = pd.read_csv(result.rejects)
    assert list(rejects["row"]) == [1, 6, 11, 16, 21, 31]
    assert list(rejects["customer"]) == ["c0", "c5", "c10", "c15", "c20", "c30"]
    assert rejects["problems"].iloc[0] == "age: must be a number or null"
    good = rows.drop(index=[0, 5, 10, 15, 20, 30])
    good = good.assign(age=pd.to_numeric(good["age"]), visits=pd.to_numeric(good["visits"]))
    expected = model["predictor"].predict(good)
    assert list(scored["prediction"]) == list(expected.labels)
    assert (
        np.max(np.abs(scored["probability_yes"].to_numpy() - expected.probabilities[:, 1])) < 1e-6
    )  # float32, other batch sizes


def test_strict_fails_the_run_and_leaves_no_output(model: dict[str, Any], tmp_path: Path) -> None:
    data = tmp_path / "new.csv"
    messy(model["frame"]).to_csv(data, index=False)
    with pytest.raises(SchemaMismatchError, match=r"row 1: age: must be a number or null"):
        score_file(scoring_model(model, "3"), data, tmp_path / "out.csv", strict=True)
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "out.rejects.csv").exists()


@pytest.mark.parametrize("output", [".parquet", ".csv"])
def test_text_in_a_number_column_on_the_first_row_is_refused_and_the_rest_written_typed(
    model: dict[str, Any], tmp_path: Path, output: str
) -> None:
    """The README's own case: `unknown` in a number column on the first row of a large file. pandas then reads the
    column as text in some blocks and as numbers in others; Parquet output crashed with ArrowTypeError."""
    rows = pd.concat([model["frame"].drop(columns="label")] * 250, ignore_index=True)  # 75,000 rows
    rows = rows.astype({"income": object})
    rows.loc[0, "income"] = "unknown"
    data = tmp_path / "big.csv"
    rows.to_csv(data, index=False)
    result = score_file(scoring_model(model, "1"), data, tmp_path / f"scored{output}", chunk_rows=100_000)
    assert result.rows == 75_000 and result.rejected >= 1
    scored = pd.read_parquet(result.output) if output == ".parquet" else pd.read_csv(result.output)
    assert len(scored) == result.scored and scored["income"].dtype == "float64"  # the training type
    assert scored["age"].dtype == "float64" and pd.api.types.is_numeric_dtype(scored["visits"])
    rejects = pd.read_csv(result.rejects)
    assert rejects["row"].iloc[0] == 1 and rejects["income"].iloc[0] == "unknown"


def test_refused_rows_fit_a_parquet_rejects_file(model: dict[str, Any], tmp_path: Path) -> None:
    data = tmp_path / "new.csv"
    messy(model["frame"]).to_csv(data, index=False)
    result = score_file(scoring_model(model, "1"), data, tmp_path / "o.parquet", tmp_path / "r.parquet", chunk_rows=7)
    refused = pd.read_parquet(result.rejects)
    assert list(refused["row"]) == [1, 6, 11, 16, 21, 31] and refused["age"].iloc[0] == "old"


def test_a_file_is_read_as_training_reads_it_separator_and_decimal_marks(model: dict[str, Any], tmp_path: Path) -> None:
    """A `;`-separated file with decimal commas, as a European spreadsheet writes it: refused row by row ("lacks
    feature columns") before; read with the same options as training now."""
    from neuroflow.core.settings import DataSettings

    rows = model["frame"].drop(columns="label").head(40)
    data = tmp_path / "eu.csv"
    rows.to_csv(data, index=False, sep=";", decimal=",")
    result = score_file(scoring_model(model, "1"), data, tmp_path / "o.csv", reading=DataSettings(decimal=","))
    assert (result.rows, result.rejected) == (40, 0)  # the separator is detected, the decimal mark given
    expected = model["predictor"].predict(rows)
    assert list(pd.read_csv(result.output)["prediction"]) == list(expected.labels)


def test_a_file_with_nothing_to_score_fails_and_names_no_output(model: dict[str, Any], tmp_path: Path) -> None:
    rows = model["frame"].drop(columns="label").head(5).astype({"age": object})
    rows["age"] = "old"  # every row refused
    data = tmp_path / "all-bad.csv"
    rows.to_csv(data, index=False)
    with pytest.raises(SchemaMismatchError, match=r"none of the 5 row\(s\) of .* could be scored; they are in"):
        score_file(scoring_model(model, "1"), data, tmp_path / "o.parquet")
    assert not (tmp_path / "o.parquet").exists() and (tmp_path / "o.rejects.csv").exists()
    for name, content in (
        ("empty.csv", b""),
        ("binary.parquet", bytes(range(256)) * 4),
        ("only-header.csv", b"age,income,city,member,visits\n"),
    ):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(DataLoadError):
            score_file(scoring_model(model, "1"), tmp_path / name, tmp_path / "o.csv")


def test_text_where_a_number_may_not_be_missing_is_said_as_text(model: dict[str, Any]) -> None:
    """Batch scoring words it as the service does: "not text", never "may not be missing" for a value that is there."""
    rows = model["frame"].drop(columns="label").head(3).astype({"visits": object})
    rows.loc[1, "visits"] = "many"
    rows.loc[2, "visits"] = None
    problems = RowChecker(model["parser"]).problems(rows)
    assert problems[1] == ["visits: must be a number, not text or another kind of value"]
    assert problems[2] == ["visits: must be a number (this feature may not be missing)"]


def test_keep_and_missing_columns(model: dict[str, Any], tmp_path: Path) -> None:
    rows = model["frame"].drop(columns="label").head(10)
    data = tmp_path / "new.csv"
    rows.to_csv(data, index=False)
    result = score_file(scoring_model(model, "1"), data, tmp_path / "o.parquet", keep=("city",))
    assert list(pd.read_parquet(result.output).columns) == [
        "city",
        "prediction",
        "probability_no",
        "probability_yes",
        "model_version",
    ]
    assert result.rejects is None
    rows.drop(columns="income").to_csv(data, index=False)
    with pytest.raises(SchemaMismatchError, match="lacks feature column"):
        score_file(scoring_model(model, "1"), data, tmp_path / "o.csv")
    rows.to_csv(data, index=False)
    with pytest.raises(SchemaMismatchError, match="--keep names column"):
        score_file(scoring_model(model, "1"), data, tmp_path / "o.csv", keep=("nope",))


def test_a_dask_cluster_scores_partitions_with_the_same_checks(model: dict[str, Any], tmp_path: Path) -> None:
    """The same file on a LocalCluster: partitioned Parquet out, the same rows refused with the same numbers and
    reasons, the same answers."""
    from distributed import Client, LocalCluster

    from neuroflow.pipelines.steps.scoring import score_on_dask

    rows = messy(model["frame"])
    data = tmp_path / "new.csv"
    rows.to_csv(data, index=False)
    single = score_file(scoring_model(model, "3"), data, tmp_path / "one.parquet")
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        Client(cluster),
    ):
        result = score_on_dask(scoring_model(model, "3"), data, tmp_path / "many.parquet", chunk_rows=20)
    assert (result.rows, result.scored, result.rejected) == (single.rows, single.scored, single.rejected)
    assert len(list((tmp_path / "many.parquet").glob("part-*.parquet"))) >= 1
    scored, expected = pd.read_parquet(tmp_path / "many.parquet"), pd.read_parquet(single.output)
    assert scored["prediction"].tolist() == expected["prediction"].tolist()
    assert np.allclose(scored["probability_yes"], expected["probability_yes"], atol=1e-6)
    refused = pd.read_parquet(result.rejects).sort_values("row")
    assert refused["row"].tolist() == pd.read_csv(single.rejects)["row"].tolist() == [1, 6, 11, 16, 21, 31]
    assert refused["problems"].tolist() == pd.read_csv(single.rejects)["problems"].tolist()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_dates_in_a_file_are_scored_as_the_service_reads_them_and_bad_ones_refused(tmp_path: Path, suffix: str) -> None:
    frame = messy_frame(rows=300)
    frame.columns = [name.strip() for name in frame.columns]
    frame = frame.drop(columns=["pixel", "nothing", "shop"])
    tiny = train_tiny(frame, "label", "binary")
    schema, predictor = tiny.schema, tiny.predictor
    rows = frame.drop(columns="label").head(40).copy()
    rows.columns = [" date", "temp "]  # padded headers, as a spreadsheet may export them
    if suffix == ".parquet":
        rows[" date"] = pd.to_datetime(rows[" date"]).dt.tz_localize("UTC")  # timestamps, with a zone
        rows.loc[3, " date"] = pd.NaT
    else:
        rows.loc[3, " date"] = "03/01/2021"  # not ISO 8601
    data = tmp_path / f"new{suffix}"
    rows.to_csv(data, index=False) if suffix == ".csv" else rows.to_parquet(data)
    model = ScoringModel("w", "1", predictor, RequestParser(schema, max_rows=10_000))
    result = score_file(model, data, tmp_path / f"scored{suffix}", chunk_rows=16)
    assert (result.rows, result.scored, result.rejected) == (40, 39, 1)
    problem = pd.read_csv(result.rejects)["problems"].iloc[0]
    assert problem.startswith("date: ") and ("ISO 8601" in problem or "must be" in problem)
    scored = pd.read_csv(result.output) if suffix == ".csv" else pd.read_parquet(result.output)
    good = frame.drop(columns="label").head(40).drop(index=3)
    expected = predictor.predict(good).probabilities[:, 1]
    assert np.max(np.abs(scored["probability_sunny"].to_numpy() - expected)) < 1e-5
