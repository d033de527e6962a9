"""The Done-when bars: default settings reach the accuracy the classic recipe reaches on the bundled data."""

from typing import Any

import pytest

from neuroflow.pipelines.flows import training_flow
from tests.integration.conftest import Store

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize(
    ("dataset", "metric", "bar"),
    [("breast_cancer", "accuracy", 0.95), ("wine", "accuracy", 0.95), ("diabetes", "r2", 0.40)],
)
def test_default_network_reaches_the_bar(
    tmp_path: Any, prefect_api_url: str, dataset: str, metric: str, bar: float
) -> None:
    outcome = training_flow(settings=Store(tmp_path).settings(data={"dataset": dataset}))
    assert outcome.promoted
    assert outcome.test_metrics[metric] >= bar, outcome.test_metrics
