"""neuroflow: from a tabular data set to a served, versioned neural network.

The checkout's top-level folders are this package's rooms: `core` (the shared ground: settings, errors, the stores),
`models` (what a trained model is), `pipelines` (the Prefect flows and their steps), `service` (the BentoML service)
and `cli` (the `neuroflow` command). Nothing is imported here, so a tool that reads this folder as a package runs
nothing by doing so.
"""
