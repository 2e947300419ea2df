"""The DVC stages, one script each, named after the stage: `python -m pipeline.stages.<stage> --help`.

Each script is thin: parse arguments, load params and inputs, call the libraries below (data, models,
training, evaluation, reporting, zoo), write outputs atomically, log to MLflow.
"""
