"""The report card of a trained version: its interval and review, the advice, the scikit-learn baselines beside it,
permutation importance and the model card."""
