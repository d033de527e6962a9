"""RealMLP-TD, pytabkit's tuned defaults ("Better by Default", Holzmüller et al. 2024), on one prepared job.

    $REALMLP_VENV/bin/python benchmarks/quality/realmlp_runner.py JOB_DIR

Runs in its own venv (scripts/setup_realmlp.sh: CPU torch + pytabkit), never neuroflow's; imports nothing of neuroflow.

Input, in JOB_DIR:
    train.parquet, validation.parquet, test.parquet   features and the target column
    job.json   {"target": str, "task": "binary" | "multiclass" | "regression", "seed": int,
                "classes": [labels as strings, in order] | null}
Output, JOB_DIR/predictions.json:
    {"probabilities": [[one per class, in `classes` order], ...] | null,   (classification)
     "values": [...] | null,                                               (regression)
     "seconds": wall seconds of fit()}

The model: RealMLP_TD_Classifier / RealMLP_TD_Regressor with every hyperparameter at its default, and
random_state=seed, device="cpu", n_threads=1, verbosity=0. It is fitted on the train rows with the validation rows
as X_val/y_val: pytabkit appends them and uses them only to pick the best epoch (no refit on them). Test rows are
only predicted.

Columns: number and bool columns are numeric; every other column is categorical (pandas `category`). A missing
category goes to pytabkit's missing/unknown code (the one a category unseen in training also gets). pytabkit
refuses NaN in numeric columns ("NaN values in continuous columns are currently not allowed!"), so a missing number
is replaced by that column's median over the train rows (0 if it is missing in all of them); nothing else is added
(no missing indicator). Classification targets are turned into str before fitting; a class in `classes` that
the train rows lack gets probability 0.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch loads: keep the job to about one core
os.environ.setdefault("MKL_NUM_THREADS", "1")

import json
import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from pytabkit import RealMLP_TD_Classifier, RealMLP_TD_Regressor

logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)  # its Trainer's "GPU available" lines and tips
warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # lightning 2.6 on torch 2.13, once per Trainer: harmless
warnings.filterwarnings("ignore", message="The given NumPy array is not writable")  # pytabkit's y under pandas 3


def features(frames: list[pd.DataFrame], target: str) -> list[pd.DataFrame]:
    """Drop the target; numbers to float with train-median imputation, everything else to `category`."""
    xs = [frame.drop(columns=[target]) for frame in frames]
    for column in xs[0].columns:
        if pd.api.types.is_numeric_dtype(xs[0][column]) or pd.api.types.is_bool_dtype(xs[0][column]):
            median = xs[0][column].astype(float).median()
            fill = 0.0 if np.isnan(median) else float(median)
            for x in xs:
                x[column] = x[column].astype(float).fillna(fill)
        else:
            for x in xs:  # labels as str, missing as NaN (pd.NA would break sklearn's encoder inside pytabkit)
                text = x[column].astype(object)
                x[column] = text.where(text.isna(), text.astype(str)).where(text.notna(), np.nan).astype("category")
    return xs


def run(job_dir: Path) -> dict:
    job = json.loads((job_dir / "job.json").read_text())
    target, task, seed = job["target"], job["task"], int(job["seed"])
    frames = [pd.read_parquet(job_dir / f"{part}.parquet") for part in ("train", "validation", "test")]
    x_train, x_val, x_test = features(frames, target)
    cat_cols = [c for c in x_train.columns if isinstance(x_train[c].dtype, pd.CategoricalDtype)]
    classify = task != "regression"
    ys = [frame[target].astype(str).to_numpy() if classify else frame[target].to_numpy(float) for frame in frames]

    torch.set_num_threads(1)
    model_class = RealMLP_TD_Classifier if classify else RealMLP_TD_Regressor
    model = model_class(random_state=seed, device="cpu", n_threads=1, verbosity=0)
    start = time.perf_counter()
    model.fit(x_train, ys[0], X_val=x_val, y_val=ys[1], cat_col_names=cat_cols)
    seconds = time.perf_counter() - start

    if not classify:
        values = np.asarray(model.predict(x_test), dtype=float).reshape(-1)
        return {"probabilities": None, "values": values.tolist(), "seconds": seconds}
    fitted = np.asarray(model.predict_proba(x_test), dtype=float)
    column = {str(label): i for i, label in enumerate(model.classes_)}
    probabilities = np.zeros((len(x_test), len(job["classes"])))
    for j, label in enumerate(job["classes"]):
        if label in column:
            probabilities[:, j] = fitted[:, column[label]]
    return {"probabilities": probabilities.tolist(), "values": None, "seconds": seconds}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: realmlp_runner.py JOB_DIR")
    job_dir = Path(sys.argv[1])
    (job_dir / "predictions.json").write_text(json.dumps(run(job_dir)))
