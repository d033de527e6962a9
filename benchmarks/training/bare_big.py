"""The script that does by hand what `neuroflow train --data big.csv` does: the baseline for a large file.

read the CSV (pandas) → train_test_split 80/20 (seed 42, stratified) → robust scaling → the default preset's network
(`bare_network.py`; BARE_PRESET=classic for the seed's), validation_split 0.2, early stopping on val_loss →
ROC AUC on the test rows.

    python bare_big.py FILE.csv TARGET EPOCHS BATCH_SIZE
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

sys.path.insert(0, os.path.dirname(__file__))
from bare_network import build, robust_scale

path, target, epochs, batch_size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
frame = pd.read_csv(path)
features, labels = frame.drop(columns=[target]).to_numpy("float32"), frame[target].to_numpy("float32")
train_x, test_x, train_y, test_y = train_test_split(features, labels, test_size=0.2, random_state=42, stratify=labels)
train_x, test_x = robust_scale(train_x, test_x)

keras.utils.set_random_seed(42)
model, answers, batch = build(train_x.shape[1], int(len(train_x) * 0.8), epochs, batch_size)
stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=epochs, restore_best_weights=True)
train_y = train_y.reshape(-1, 1)
history = model.fit(
    train_x, train_y, batch_size=batch, epochs=epochs, validation_split=0.2, callbacks=[stopper], verbose=0
)
chances = np.asarray(answers.predict(test_x, batch_size=4096, verbose=0))[:, 0]
accuracy = float(np.mean((chances > 0.5) == test_y))
print(
    f"test accuracy {accuracy:.4f}  roc_auc {roc_auc_score(test_y, chances):.4f}  epochs {len(history.history['loss'])}"
)
