"""Training: the shared epoch loop, candidates in lockstep, the pretraining tree and successive-halving fine-tuning."""

from pipeline.training.errors import BadInputError, CheckpointError, DivergenceError, TrainingError
from pipeline.training.halving import Trial, halving_search
from pipeline.training.loop import TrainResult, train_model
from pipeline.training.search import Stack, pretrain_stacks
from pipeline.training.stack import StackSpec

__all__ = [
    "BadInputError",
    "CheckpointError",
    "DivergenceError",
    "Stack",
    "StackSpec",
    "TrainResult",
    "TrainingError",
    "Trial",
    "halving_search",
    "pretrain_stacks",
    "train_model",
]
