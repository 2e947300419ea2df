"""Training: the shared epoch loop, the pretraining layer kinds and their tree search, successive-halving fine-tuning.

Import each from its module (`pipeline.training.search`...): this package imports none of them, so a stage loads, and
depends on, only what it runs."""
