"""What the service does with an answer after it is sent: record it in the prediction log, and score the same records
with the shadow version (if one is configured) for the log, on a background thread.

No BentoML here: the service wires a `Recorder` into the model holder; the tests use it directly.
"""

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from ..core.predictionlog import CHAMPION, SHADOW, PredictionLog, Served
from ..models.inference import Prediction
from .loading import LoadedModel

log = logging.getLogger("neuroflow.service")
SHADOW_QUEUE_REQUESTS = 10_000
WARN_EVERY_SECONDS = 60.0


class Recorder:
    """Records every answer (off the request path) and feeds the shadow; neither can fail or slow a request."""

    def __init__(
        self,
        prediction_log: PredictionLog | None,
        shadow: Callable[[], LoadedModel | None] = lambda: None,
        on_shadow_failure: Callable[[int], None] | None = None,
    ) -> None:
        self.log = prediction_log
        self.shadow = shadow
        self.on_shadow_failure = on_shadow_failure or (lambda _: None)
        self.shadow_failures = 0
        self.shadow_scored = 0
        self._shadow_queue: deque[tuple[Sequence[str], Sequence[dict[str, Any]]]] = deque(maxlen=SHADOW_QUEUE_REQUESTS)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_warning = 0.0

    def start(self) -> "Recorder":
        if self.log is not None:
            self.log.start()
        self._thread = threading.Thread(target=self._run_shadow, name="neuroflow-shadow", daemon=True)
        self._thread.start()
        return self

    def served(
        self, model: LoadedModel, ids: Sequence[str], records: Sequence[dict[str, Any]], prediction: Prediction
    ) -> None:
        """The champion answered these records: queue them for the log and the shadow."""
        self._log(model, ids, records, prediction, CHAMPION)
        if self._thread is not None and self.shadow() is not None:
            self._shadow_queue.append((ids, records))
            self._wake.set()

    def _run_shadow(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            self.score_shadow()

    def score_shadow(self) -> int:
        """Score every queued request with the shadow version and log its answers; returns how many records."""
        scored = 0
        while self._shadow_queue:
            ids, records = self._shadow_queue.popleft()
            model = self.shadow()
            if model is None:
                continue
            try:
                prediction = model.predictor.predict_records(records)
            except Exception as error:
                self._shadow_failed(len(ids), model, error)
                continue
            scored += len(ids)
            self._log(model, ids, records, prediction, SHADOW)
        self.shadow_scored += scored
        return scored

    def _log(
        self,
        model: LoadedModel,
        ids: Sequence[str],
        records: Sequence[dict[str, Any]],
        prediction: Prediction,
        role: str,
    ) -> None:
        """One version's answers to one request, into the prediction log (when it is on)."""
        if self.log is not None:
            served = Served(
                ids,
                model.info.name,
                model.version,
                records,
                prediction.answers,
                prediction.probabilities,
                model.schema.classes,
                role,
            )
            self.log.record(served)

    def _shadow_failed(self, count: int, model: LoadedModel, error: Exception) -> None:
        self.shadow_failures += count
        try:
            self.on_shadow_failure(count)
        except Exception:
            log.debug("could not count a shadow failure", exc_info=True)
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY_SECONDS:
            self._last_warning = now
            log.warning(
                "shadow version %s failed on %d record(s) (%s: %s); the champion's answers are unaffected. "
                "Failures so far: %d",
                model.version,
                count,
                type(error).__name__,
                str(error)[:200],
                self.shadow_failures,
            )

    def close(self) -> None:
        """Score what the shadow still has queued, then write everything buffered (on shutdown and SIGTERM)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.score_shadow()
        if self.log is not None:
            self.log.close()
