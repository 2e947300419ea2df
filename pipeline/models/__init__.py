"""The models of the benchmark, one per file, each with its config dataclass beside it. Import each from its
module (`pipeline.models.mlp`...): this package imports none of them, so a stage loads only the models it runs.

The RBM the table trains is a lockstep group (`pipeline.training.lockstep.RBMGroup`, joint top in
`pipeline.training.joint`); `tests/reference/rbm.py` is the plain one-model RBM the tests check it against."""
