"""What the flows record in MLflow and Prefect: the run's record, the registry and the champion alias, the gate that
moves it, the unchanged-run check and the note to a running service."""
