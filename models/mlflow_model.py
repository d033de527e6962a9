"""MLflow "model from code": the registered model wraps `Predictor`, so MLflow serves exactly our inference path."""

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

# MLflow runs this file by its path, outside any package, so this one import names the package in full; the model's
# staged code puts `neuroflow` on the path MLflow loads it with, so only a tool reading the checkout misses it.
from neuroflow.models.inference import Predictor  # pyright: ignore[reportMissingImports]


class NeuroflowModel(PythonModel):
    """Loads the NumPy weights, preprocessing and schema (all data) from the artifacts; predicts from raw values."""

    def load_context(self, context: PythonModelContext) -> None:
        artifacts = context.artifacts
        self.predictor = Predictor.load(artifacts["weights"], artifacts["preprocessing"], artifacts["schema"])

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        prediction = self.predictor.predict(model_input)
        return prediction.to_frame(self.predictor.schema.classes)


mlflow.models.set_model(NeuroflowModel())
