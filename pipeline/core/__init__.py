"""Stage plumbing: the command line and its one error wrapper, errors, paths, MLflow tracking, timings.

Nothing here changes what a stage computes, so none of it is a DVC dep (dvc.yaml, tests/test_layout.py)."""
