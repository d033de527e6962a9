import keras
import pytest

from neuroflow.core.spec import NetworkSpec
from neuroflow.models.network import build_network, output_head


@pytest.mark.parametrize(
    ("task", "classes", "units", "activation", "loss"),
    [
        ("binary", None, 1, "sigmoid", "binary_crossentropy"),
        ("multiclass", 3, 3, "softmax", "categorical_crossentropy"),
        ("regression", None, 1, "linear", "mse"),
    ],
)
def test_output_and_loss_fit_the_task(task: str, classes: int | None, units: int, activation: str, loss: str) -> None:
    head = output_head(task, classes)  # type: ignore[arg-type]
    assert (head.units, head.activation, head.loss) == (units, activation, loss)
    network = build_network(6, task, NetworkSpec(hidden_units=(5, 4)), classes)  # type: ignore[arg-type]
    assert network.output_shape == (None, units)
    assert network.get_layer("output").activation.__name__ == activation
    assert network.loss == loss


def test_multiclass_needs_three_classes() -> None:
    with pytest.raises(ValueError, match="at least 3 classes"):
        output_head("multiclass", 2)


def test_hidden_layers_dropout_l2_and_optimizer_follow_the_settings() -> None:
    spec = NetworkSpec(
        hidden_units=(7, 5, 3),
        activation="tanh",
        dropout=0.3,
        l2=0.01,
        optimizer="rmsprop",
        learning_rate=0.05,
    )
    network = build_network(4, "binary", spec)
    dense = [layer for layer in network.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense] == [7, 5, 3, 1]
    assert all(layer.activation.__name__ == "tanh" for layer in dense[:-1])
    assert all(layer.kernel_regularizer is not None for layer in dense[:-1])
    assert [layer.rate for layer in network.layers if isinstance(layer, keras.layers.Dropout)] == [
        0.3,
        0.3,
        0.3,
    ]
    assert isinstance(network.optimizer, keras.optimizers.RMSprop)
    assert float(network.optimizer.learning_rate) == pytest.approx(0.05)
    # weights and biases: 4*7+7 + 7*5+5 + 5*3+3 + 3*1+1
    assert network.count_params() == 35 + 40 + 18 + 4


def test_no_dropout_or_regularizer_when_off() -> None:
    network = build_network(4, "regression", NetworkSpec(hidden_units=(3,), optimizer="sgd"))
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in network.layers)
    assert network.get_layer("hidden_1").kernel_regularizer is None
    assert isinstance(network.optimizer, keras.optimizers.SGD)
