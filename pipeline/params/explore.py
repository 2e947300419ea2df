"""The `explore` section of params.yaml: the wide model search (`python -m pipeline.explore`), outside `dvc repro`.

Its every candidate's validation error is committed under reports/search/; the compact grids of
`vincent.pretrain` and `vincent.finetune` that `dvc repro` runs are drawn from it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from pipeline.params.base import IntGrid, NoiseLevel, PositiveGrid, PositiveInt, Section


class ExploreParams(Section):
    """A grid over Vincent et al. (JMLR 2010, Table 2)'s ranges; fine-tuning by successive halving."""

    dataset: str = "basic"
    columns: Annotated[list[Literal["SAA-3", "SdA-3", "DBN-1", "DBN-3"]], Field(min_length=1)] = [
        "SAA-3",
        "SdA-3",
        "DBN-1",
        "DBN-3",
    ]
    """the table's columns to search; a stack kind no column needs is not pretrained (e.g. [SdA-3, DBN-3])"""
    hidden: IntGrid = [1000, 2000]
    """units per layer, the same for the three layers"""
    ae_lr: PositiveGrid = [0.01, 0.03, 0.1]
    noise: Annotated[list[NoiseLevel], Field(min_length=1)] = [0.0, 0.1, 0.25, 0.4]
    """masking levels; 0 is SAA-3, the others SdA-3"""
    rbm_lr: PositiveGrid = [0.01, 0.03, 0.1]
    epochs: IntGrid = [25, 50, 100]
    """pretraining epochs per layer (autoencoders and RBMs); read from snapshots of one run per prefix"""
    finetune_lr: PositiveGrid = [0.02, 0.05, 0.1, 0.2]
    max_epochs: PositiveInt = 150
    patience: PositiveInt = 20
    rungs: IntGrid = [10, 30]
    """successive halving: at each rung epoch only the best 1/eta of the candidates go on"""
    eta: Annotated[int, Field(ge=2)] = 3
    group_size: PositiveInt = 36
    """candidates trained in lockstep (one batched matmul); use 1 on a CPU"""
    top: PositiveInt = 5
    """candidates per column whose test error is reported after selection (sensitivity)"""
    tf32: bool = True
    """on CUDA, TensorFloat-32 matmuls (10-bit mantissa): several times faster; selection only"""
