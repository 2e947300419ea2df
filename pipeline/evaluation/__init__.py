"""Evaluation: error rates and intervals, SVM baselines, probes of frozen features."""
