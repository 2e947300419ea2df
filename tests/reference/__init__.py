"""Reference implementations the tests check the pipeline's code against (not run by any stage)."""
