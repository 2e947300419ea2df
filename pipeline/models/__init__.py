"""The models of the benchmark, one per file, each with its config dataclass beside it. Import each from its
module (`pipeline.models.mlp`...): this package imports none of them, so a stage loads only the models it runs.

The table's pretraining layers are the kinds of `pipeline/training/kinds/` (the RBM: `training/families/rbm.py`, with the joint
top); `tests/reference/rbm.py` is the plain one-model RBM the tests check it against."""
