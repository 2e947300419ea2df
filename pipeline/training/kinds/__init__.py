"""The pretraining layer kinds, one file each (the interface: pipeline/training/layer_kind.py)."""
