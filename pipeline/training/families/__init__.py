"""The families of pretraining layers the kinds build on, one file each: lockstep groups and their starting weights.

A family is a DVC dep of the pretrain stages of its kinds' stacks only (dvc.yaml's pretrain items: KINDS' `family`).
"""
