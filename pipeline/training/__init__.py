"""Training: the shared epoch loop, greedy layer-wise pretraining and supervised fine-tuning."""

from pipeline.training.errors import BadInputError, CheckpointError, DivergenceError, TrainingError
from pipeline.training.finetune import FinetuneResult, finetune
from pipeline.training.layerwise import PretrainConfig, StackResult, pretrain_stack
from pipeline.training.loop import TrainResult, train_model

__all__ = [
    "BadInputError",
    "CheckpointError",
    "DivergenceError",
    "FinetuneResult",
    "PretrainConfig",
    "StackResult",
    "TrainResult",
    "TrainingError",
    "finetune",
    "pretrain_stack",
    "train_model",
]
