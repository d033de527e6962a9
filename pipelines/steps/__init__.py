"""The steps the flows call: plain functions that read, validate, split, train, evaluate, tune, score and monitor.
None imports Prefect or BentoML; each is tested directly on tiny data."""
