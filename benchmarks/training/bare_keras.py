"""The Keras script that does by hand what `neuroflow train` does on breast_cancer: the baseline for wall time.

load → train_test_split 80/20 (seed 42) → robust scaling → the default preset's network (`bare_network.py`: the same
layers `neuroflow train` builds; BARE_PRESET=classic for the seed's 64-32 ReLU network), validation_split 0.2,
early stopping on val_loss (patience 10, best weights) → ROC AUC on the test rows.

    python bare_keras.py [EPOCHS PATIENCE]    # 50 and 10 by default; the benchmark gives both the same epochs
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

sys.path.insert(0, os.path.dirname(__file__))
from bare_network import build, robust_scale

features, target = load_breast_cancer(return_X_y=True)
train_x, test_x, train_y, test_y = train_test_split(features, target, test_size=0.2, random_state=42, stratify=target)
train_x, test_x = robust_scale(train_x, test_x)

keras.utils.set_random_seed(42)
epochs, patience = (int(sys.argv[1]), int(sys.argv[2])) if len(sys.argv) > 2 else (50, 10)
model, answers, batch = build(train_x.shape[1], int(len(train_x) * 0.8), epochs, 0)
stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
train_y = train_y.reshape(-1, 1).astype("float32")
history = model.fit(
    train_x, train_y, batch_size=batch, epochs=epochs, validation_split=0.2, callbacks=[stopper], verbose=0
)
chances = np.asarray(answers.predict(test_x, verbose=0))[:, 0]
accuracy = float(np.mean((chances > 0.5) == test_y))
print(
    f"test accuracy {accuracy:.4f}  roc_auc {roc_auc_score(test_y, chances):.4f}  epochs {len(history.history['loss'])}"
)
