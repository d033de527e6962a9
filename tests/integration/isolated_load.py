"""Load a registered model in a Python that has site-packages but not the editable neuroflow install.

Run as: python -S isolated_load.py TRACKING_URI MODEL_URI SITE_PACKAGES. `-S` skips `.pth` files, which is how an
editable install puts the checkout on the path; site-packages is added back by hand.
"""

import importlib.util
import json
import sys

tracking_uri, model_uri, site_packages = sys.argv[1:4]
sys.path.append(site_packages)
sys.path = [entry for entry in sys.path if entry not in ("", ".")]
assert importlib.util.find_spec("neuroflow") is None, "neuroflow must not be importable here"

import mlflow  # noqa: E402
from sklearn.datasets import load_breast_cancer  # noqa: E402

mlflow.set_tracking_uri(tracking_uri)
frame = mlflow.pyfunc.load_model(model_uri).predict(load_breast_cancer(as_frame=True).data.head(3))
print(json.dumps(frame.to_dict(orient="records")))
