"""The classic script that does by hand what `neuroflow train --data big.csv` does: the baseline for a large file.

read the CSV (pandas) → train_test_split 80/20 (seed 42, stratified) → StandardScaler → Dense 64 relu → 32 relu →
1 sigmoid, adam, binary cross-entropy, validation_split 0.2, early stopping on val_loss → evaluate on the test rows.

    python bare_big.py FILE.csv TARGET EPOCHS BATCH_SIZE
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

path, target, epochs, batch_size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
frame = pd.read_csv(path)
features, labels = frame.drop(columns=[target]).to_numpy("float32"), frame[target].to_numpy("float32")
train_x, test_x, train_y, test_y = train_test_split(features, labels, test_size=0.2, random_state=42, stratify=labels)
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
stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=epochs, restore_best_weights=True)
history = model.fit(
    train_x, train_y, batch_size=batch_size, epochs=epochs, validation_split=0.2, callbacks=[stopper], verbose=0
)
loss, accuracy, auc = model.evaluate(test_x, test_y, batch_size=4096, verbose=0)
print(f"test accuracy {accuracy:.4f}  roc_auc {auc:.4f}  epochs {len(history.history['loss'])}")
