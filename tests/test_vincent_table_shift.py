"""The generated rows' "ours − paper" lines list the paper's columns only, never a later column's missing delta."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.params import load_params
from pipeline.reporting.vincent_table import data_shift_lines

ROOT = Path(__file__).resolve().parents[1]


def test_later_columns_without_a_paper_value_are_left_out() -> None:
    params = load_params(ROOT / "params.yaml")
    table = pd.DataFrame(
        {
            "dataset": ["bg-rand"] * 3,
            "model": ["SVM_rbf", "SdA-3", "CAE-2"],
            "error_pct": [15.16, 10.74, 12.41],
            "paper_error_pct": [14.58, 10.38, np.nan],
            "delta_pct": [0.58, 0.36, np.nan],
        }
    )
    (line,) = data_shift_lines(params, table)
    assert "SdA-3 +0.36" in line
    assert "CAE-2" not in line and "nan" not in line
