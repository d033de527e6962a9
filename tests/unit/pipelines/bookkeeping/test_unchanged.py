"""Nothing changed, nothing registered: the training fingerprint follows what decides the model, and only that."""

from typing import Any

from neuroflow.core.settings import load_settings
from neuroflow.models.schema import infer_schema
from neuroflow.pipelines.bookkeeping.unchanged import (
    FINGERPRINT_TAG,
    content_digest,
    training_fingerprint,
    unchanged_since,
)
from tests.utils.factories import mixed_frame


def fingerprint(frame: Any = None, **overrides: Any) -> str:
    frame = mixed_frame(rows=300) if frame is None else frame
    return training_fingerprint(frame, infer_schema(frame, "label", "binary"), load_settings(overrides=overrides))


def test_the_same_data_and_settings_give_the_same_fingerprint() -> None:
    assert fingerprint() == fingerprint()


def test_a_value_past_the_rows_mlflows_digest_reads_changes_it() -> None:
    """MLflow's data set digest hashes the first rows only; a nightly file changed further down is new data."""
    frame = mixed_frame(rows=300)
    changed = frame.copy()
    changed.loc[299, "income"] += 1.0
    assert content_digest(changed) != content_digest(frame)
    assert fingerprint(changed) != fingerprint(frame)


def test_what_shapes_the_model_changes_it_and_what_does_not_leaves_it() -> None:
    base = fingerprint()
    assert fingerprint(network={"epochs": 7}) != base
    assert fingerprint(network={"dropout": 0.1}) != base
    assert fingerprint(data={"seed": 1}) != base
    assert fingerprint(data={"test_size": 0.3}) != base
    assert fingerprint(validation={"min_rows": 50}) == base  # how strictly data is checked, not what is learned
    assert fingerprint(service={"port": 4000}) == base


class Version:
    def __init__(self, version: str, tags: dict[str, str]) -> None:
        self.version, self.tags = version, tags


class Registry:
    """Answers the alias read with a version, or fails as an unreachable registry does."""

    def __init__(self, answer: Version | Exception) -> None:
        self.answer = answer

    def get_model_version_by_alias(self, name: str, alias: str) -> Version:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_only_the_champions_own_fingerprint_counts_as_unchanged() -> None:
    same = Registry(Version("3", {FINGERPRINT_TAG: "abc"}))
    assert unchanged_since(same, "m", "champion", "abc") == "3"
    assert unchanged_since(same, "m", "champion", "abd") is None
    assert unchanged_since(Registry(Version("3", {})), "m", "champion", "abc") is None  # trained before fingerprints
    assert unchanged_since(Registry(ConnectionError("refused")), "m", "champion", "abc") is None  # cannot say: train
