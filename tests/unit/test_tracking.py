"""What the MLflow run records about the data: the data set digest."""

import numpy as np
import pandas as pd
from mlflow.data.digest_utils import compute_pandas_digest

from pipelines.tracking import frame_digest
from tests.utils.factories import mixed_frame


def test_digest_is_mlflows_own_on_small_and_large_frames() -> None:
    small = mixed_frame(rows=300)
    rng = np.random.default_rng(0)
    large = pd.DataFrame(
        {
            "x": rng.normal(size=12_000),
            "n": rng.integers(0, 9, size=12_000),
            "city": rng.choice(["oslo", "lima"], size=12_000).astype(object),
        }
    )
    assert frame_digest(small) == compute_pandas_digest(small)
    assert frame_digest(large) == compute_pandas_digest(large)


def test_digest_follows_the_values_and_the_row_count() -> None:
    frame = mixed_frame(rows=300)
    changed = frame.copy()
    changed.iloc[0, 0] = changed.iloc[1, 0]
    assert frame_digest(changed) != frame_digest(frame)
    assert frame_digest(frame.iloc[:-1]) != frame_digest(frame)


def test_dataset_schema_is_the_learned_one_and_infers_only_unknown_columns() -> None:
    from models.schema import infer_schema
    from pipelines.tracking import dataset_schema, model_signature

    frame = mixed_frame(rows=300)
    schema = infer_schema(frame, "label", "binary")
    logged = dataset_schema(schema, frame.assign(note="free text"))
    by_name = {spec.name: spec for spec in logged.inputs}
    assert list(by_name) == [*frame.columns, "note"]
    for spec in model_signature(schema).inputs.inputs:
        assert by_name[spec.name] == spec
    assert by_name["age"].required is False  # it has missing values
    assert by_name["label"].required is True
    assert by_name["note"].type.name == "string"  # not in the schema: inferred
