"""The classic Keras script that does by hand what `neuroflow train` does on breast_cancer: the baseline for wall time.

load → train_test_split 80/20 (seed 42) → StandardScaler → Dense 64 relu → 32 relu → 1 sigmoid, adam, binary
cross-entropy, batch 32, validation_split 0.2, early stopping on val_loss (patience 10, best weights) → evaluate.

    python bare_keras.py [EPOCHS PATIENCE]    # 50 and 10 by default; the benchmark gives both the same epochs
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

features, target = load_breast_cancer(return_X_y=True)
train_x, test_x, train_y, test_y = train_test_split(features, target, test_size=0.2, random_state=42, stratify=target)
scaler = StandardScaler().fit(train_x)
train_x, test_x = scaler.transform(train_x), scaler.transform(test_x)

keras.utils.set_random_seed(42)
model = keras.Sequential(
    [
        keras.Input(shape=(train_x.shape[1],)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(1, activation="sigmoid"),
    ]
)
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy", keras.metrics.AUC(name="auc")])
epochs, patience = (int(sys.argv[1]), int(sys.argv[2])) if len(sys.argv) > 2 else (50, 10)
stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
history = model.fit(
    train_x, train_y, batch_size=32, epochs=epochs, validation_split=0.2, callbacks=[stopper], verbose=0
)
loss, accuracy, auc = model.evaluate(test_x, test_y, verbose=0)
print(f"test accuracy {accuracy:.4f}  roc_auc {auc:.4f}  epochs {len(history.history['loss'])}")
