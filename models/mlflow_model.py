"""MLflow "model from code": the registered model wraps `Predictor`, so MLflow serves exactly our inference path."""

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

from neuroflow.models.inference import Predictor


class NeuroflowModel(PythonModel):
    """Loads the network's weights and its preprocessing from the model's artifacts; predicts from raw values."""

    def load_context(self, context: PythonModelContext) -> None:
        artifacts = context.artifacts
        weights = artifacts.get("weights")
        # Models logged before the NumPy weights existed carry only the Keras network.
        network = None if weights else artifacts["network"]
        self.predictor = Predictor.load(network, artifacts["preprocessing"], weights)

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        prediction = self.predictor.predict(model_input)
        return prediction.to_frame(self.predictor.schema.classes)


mlflow.models.set_model(NeuroflowModel())
