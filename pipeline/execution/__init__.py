"""Running the pipeline's stages on more than one process: the launchers behind `python -m pipeline.repro`."""
