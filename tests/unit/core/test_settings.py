from pathlib import Path

import pytest

from neuroflow.core.errors import ConfigError
from neuroflow.core.settings import Settings, load_settings


def test_defaults_are_the_tabular_recipe() -> None:
    settings = load_settings()
    assert settings.data.dataset == "breast_cancer"
    assert settings.network.preset == "tabular"
    assert settings.network.hidden_units == (128, 128)
    assert (settings.network.members, settings.network.numeric_embedding) == (4, 8)
    assert settings.network.spec().preset == "tabular"
    assert (settings.data.test_size, settings.data.validation_size) == (0.2, 0.2)
    assert settings.tracking.tracking_uri == "sqlite:///mlflow.db"
    assert settings.model_name == "neuroflow-breast_cancer"


def test_environment_variables_use_the_prefix_and_nest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEUROFLOW_NETWORK__EPOCHS", "7")
    monkeypatch.setenv("NEUROFLOW_TRACKING__MODEL_NAME", "from-env")
    settings = load_settings()
    assert settings.network.epochs == 7
    assert settings.model_name == "from-env"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("config.yaml", "network:\n  epochs: 3\n  hidden_units: [16, 8]\ndata:\n  dataset: wine\n"),
        ("config.toml", '[network]\nepochs = 3\nhidden_units = [16, 8]\n[data]\ndataset = "wine"\n'),
    ],
)
def test_config_files_in_yaml_and_toml(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    settings = load_settings(path)
    assert settings.network.epochs == 3
    assert settings.network.hidden_units == (16, 8)
    assert settings.model_name == "neuroflow-wine"


def test_a_config_file_reaches_only_the_settings_it_was_named_for(tmp_path: Path) -> None:
    """The file is an argument, not a hidden channel: settings built meanwhile, or after, never see it, and what
    comes back is a plain Settings (what flows, Dask workers and pickles expect)."""
    import pickle
    from concurrent.futures import ThreadPoolExecutor

    from neuroflow.core.settings import Settings

    path = tmp_path / "config.yaml"
    path.write_text("network:\n  epochs: 3\n")
    with ThreadPoolExecutor(4) as pool:
        read = list(pool.map(lambda i: load_settings(path if i % 2 else None).network.epochs, range(40)))
    default = Settings().network.epochs
    assert read == [3 if i % 2 else default for i in range(40)]
    settings = load_settings(path)
    assert type(settings) is Settings and pickle.loads(pickle.dumps(settings)) == settings
    assert Settings().network.epochs == default


def test_precedence_is_options_then_environment_then_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("network:\n  epochs: 3\n  batch_size: 8\n  patience: 4\n")
    monkeypatch.setenv("NEUROFLOW_NETWORK__BATCH_SIZE", "16")
    monkeypatch.setenv("NEUROFLOW_NETWORK__EPOCHS", "5")
    settings = load_settings(path, {"network": {"epochs": 9}})
    assert (settings.network.epochs, settings.network.batch_size, settings.network.patience) == (9, 16, 4)


def test_bad_values_name_every_field() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(overrides={"network": {"epochs": 0, "activation": "swish", "dropout": 1.5}})
    message = str(caught.value)
    for field in ("network.epochs", "network.activation", "network.dropout"):
        assert field in message


def test_unknown_data_set_and_file_without_target_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown data set 'mnist'"):
        load_settings(overrides={"data": {"dataset": "mnist"}})
    with pytest.raises(ConfigError, match="--target"):
        load_settings(overrides={"data": {"path": "x.csv"}})


def test_hidden_units_from_text() -> None:
    assert load_settings(overrides={"network": {"hidden_units": "32, 16,8"}}).network.hidden_units == (
        32,
        16,
        8,
    )
    with pytest.raises(ConfigError, match="comma-separated"):
        load_settings(overrides={"network": {"hidden_units": "a,b"}})
    with pytest.raises(ConfigError, match="at least one unit"):
        load_settings(overrides={"network": {"hidden_units": [4, 0]}})


def test_config_file_problems_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.yaml")
    wrong = tmp_path / "settings.ini"
    wrong.write_text("x")
    with pytest.raises(ConfigError, match=r"\.yaml"):
        load_settings(wrong)
    unknown = tmp_path / "typo.yaml"
    unknown.write_text("netwrok:\n  epochs: 3\n")
    with pytest.raises(ConfigError, match="netwrok"):
        load_settings(unknown)


def test_model_name_follows_the_data_file() -> None:
    settings = Settings(data={"path": Path("/data/churn.csv"), "target": "churned"})
    assert settings.model_name == "neuroflow-churn"


def test_the_example_config_in_the_repo_loads() -> None:
    example = Path(__file__).parents[3] / "examples" / "train.yaml"
    settings = load_settings(example)
    assert settings.data.dataset == "wine"
    assert settings.network.dropout == 0.1
    loop = load_settings(example.with_name("loop.yaml"))
    assert loop.service.shadow == "latest" and loop.monitoring.drift_share == 0.3


def test_a_reference_schema_names_the_model_a_run_joins(tmp_path: Path) -> None:
    from neuroflow.core.settings import adopt_reference_model

    named = tmp_path / "named.json"
    named.write_text('{"model_name": "neuroflow-customers", "features": []}')
    unnamed = tmp_path / "unnamed.json"
    unnamed.write_text('{"features": []}')
    data = {"path": "new_batch.csv", "target": "y"}
    joined = adopt_reference_model(load_settings(overrides={"data": data | {"reference_schema": named}}))
    assert joined.model_name == "neuroflow-customers"
    chosen = load_settings(overrides={"data": data | {"reference_schema": named}, "tracking": {"model_name": "mine"}})
    assert adopt_reference_model(chosen).model_name == "mine"
    alone = adopt_reference_model(load_settings(overrides={"data": data | {"reference_schema": unnamed}}))
    assert alone.model_name == "neuroflow-new_batch"


def test_credentials_leave_a_server_uri_but_stay_in_a_database_uri() -> None:
    from neuroflow.core.settings import redact

    settings = load_settings(overrides={"tracking": {"tracking_uri": "https://alice:p%40ss@mlflow.example:5000/x"}})
    assert settings.tracking.tracking_uri == "https://mlflow.example:5000/x"
    assert settings.tracking.username == "alice" and settings.tracking.password is not None
    assert settings.tracking.password.get_secret_value() == "p@ss"
    assert "p@ss" not in settings.model_dump_json() and "p%40ss" not in settings.model_dump_json()
    database = load_settings(overrides={"tracking": {"tracking_uri": "postgresql://u:secret@db/mlflow"}})
    assert database.tracking.tracking_uri == "postgresql://u:secret@db/mlflow"  # SQLAlchemy needs them
    assert redact(database.tracking.tracking_uri) == "postgresql://***@db/mlflow"


def test_overrides_merge_within_sections_and_given_fields_win() -> None:
    from neuroflow.core.settings import build_overrides, merge_overrides

    base = {"network": {"epochs": 5, "dropout": 0.1}, "reports_dir": "old"}
    extra = build_overrides(network={"epochs": 9, "hidden_units": None}, data={"dataset": None})
    assert merge_overrides(base, extra) == {"network": {"epochs": 9, "dropout": 0.1}, "reports_dir": "old"}
    assert merge_overrides(base, {"reports_dir": "new"})["reports_dir"] == "new"
    assert merge_overrides({}, {"data": {"seed": 1}}) == {"data": {"seed": 1}}


def test_the_prediction_logs_database_password_never_reaches_a_runs_parameters() -> None:
    """Every run logs the settings as parameters (monitoring runs included); the log's PostgreSQL URL shows as
    `postgresql://***@host/db` there, while the service still connects with it."""
    from neuroflow.pipelines.bookkeeping.tracking import flatten_settings

    url = "postgresql://neuroflow:s3cret-pw@postgres:5432/predictions"
    settings = load_settings(overrides={"service": {"prediction_log": url}})
    assert settings.service.prediction_log == url
    parameters = flatten_settings(settings)
    assert parameters["service.prediction_log"] == "postgresql://***@postgres:5432/predictions"
    assert not [key for key, value in parameters.items() if "s3cret-pw" in value]
    assert load_settings(overrides={"service": {"prediction_log": " OFF "}}).service.prediction_log == "off"


def test_the_classic_preset_is_the_seed_recipe_and_a_field_overrides_a_preset() -> None:
    settings = load_settings(overrides={"network": {"preset": "classic"}})
    assert settings.network.hidden_units == (64, 32)
    assert settings.network.batch_size == 32
    assert settings.network.epochs == 50
    assert (settings.network.members, settings.network.numeric_embedding, settings.network.scaling) == (
        1,
        0,
        "standard",
    )
    tabular = load_settings(overrides={"network": {"epochs": 7}}).network
    assert (tabular.epochs, tabular.hidden_units) == (7, (128, 128))
    spec = load_settings(overrides={"evaluation": {"threshold": "f1"}}).network.spec("f1")
    assert spec.threshold == "f1"


def test_an_unknown_preset_names_the_choices() -> None:
    with pytest.raises(ConfigError, match="tabular"):
        load_settings(overrides={"network": {"preset": "fancy"}})
