import numpy as np
import pandas as pd
import pytest

from neuroflow.models.preprocessing import fit_preprocessing
from neuroflow.models.schema import infer_schema
from tests.utils.factories import mixed_frame, regression_frame


def test_scaling_is_fitted_on_training_rows_only() -> None:
    frame = regression_frame(rows=100)
    train, other = frame.iloc[:60], frame.iloc[60:]
    schema = infer_schema(frame, "target", "regression")
    preprocessing = fit_preprocessing(schema, train, train["target"])
    scaled = preprocessing.transform(train)
    assert np.allclose(scaled.mean(axis=0), 0, atol=1e-5)
    assert not np.allclose(preprocessing.transform(other).mean(axis=0), 0, atol=1e-3)
    assert preprocessing.target_mean == pytest.approx(train["target"].mean())


def test_missing_values_and_unseen_categories_are_handled() -> None:
    frame = mixed_frame(rows=200)
    schema = infer_schema(frame, "label", "binary")
    preprocessing = fit_preprocessing(schema, frame, frame["label"])
    matrix = preprocessing.transform(frame)
    assert matrix.dtype == np.float32
    assert not np.isnan(matrix).any()
    # 2 numeric + city (3 + missing) + member (2 + missing)
    assert preprocessing.n_inputs == matrix.shape[1] == 9
    unseen = pd.DataFrame({"age": [None], "income": [40_000.0], "city": ["tokyo"], "member": [True]})
    row = preprocessing.transform(unseen)
    city_columns = [i for i, n in enumerate(preprocessing.features.get_feature_names_out()) if "city" in n]
    assert row[0, city_columns].sum() == 0


def test_target_encoding() -> None:
    frame = mixed_frame(rows=50)
    schema = infer_schema(frame, "label", "binary")
    preprocessing = fit_preprocessing(schema, frame, frame["label"])
    assert list(preprocessing.encode_target(pd.Series(["no", "yes", "yes"]))) == [0, 1, 1]
    with pytest.raises(ValueError, match="never seen"):
        preprocessing.encode_target(pd.Series(["maybe"]))

    regression = regression_frame(rows=50)
    reg_schema = infer_schema(regression, "target", "regression")
    reg = fit_preprocessing(reg_schema, regression, regression["target"])
    encoded = reg.encode_target(regression["target"])
    assert encoded.mean() == pytest.approx(0, abs=1e-5)
    assert np.allclose(reg.decode_regression(encoded), regression["target"], rtol=1e-5)
