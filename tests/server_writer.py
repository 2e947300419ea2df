"""One of the stage-like writers of tests/test_server.py: `python -m tests.server_writer WRITER REPS SYNC_DIR`.

Each repetition is one pipeline invocation in which this writer and the other run a stage at the same moment
(a file barrier in SYNC_DIR): the stage run, under the invocation's parent run, with its input dataset (the same
new one in both writers) and two nested candidates logging per-epoch curves and final metrics, through
pipeline.core.tracking as the stages do.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

EXPERIMENT = "server-test"
CANDIDATES, EPOCHS = 2, 5


def barrier(sync: Path, rep: int, writer: int, timeout_s: float = 60.0) -> None:
    (sync / f"{rep}-{writer}").touch()
    other = sync / f"{rep}-{1 - writer}"
    deadline = time.monotonic() + timeout_s
    while not other.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"writer {1 - writer} never reached repetition {rep}")
        time.sleep(0.002)


def split(rep: int) -> SimpleNamespace:
    """A tiny split, new to the store at each repetition, shaped as a prepared split (.x and .y with .numpy())."""
    x, y = np.full((4, 3), rep, dtype=np.float32), np.arange(4)
    return SimpleNamespace(x=SimpleNamespace(numpy=lambda: x), y=SimpleNamespace(numpy=lambda: y))


def main(writer: int, reps: int, sync: Path) -> None:
    from pipeline.core import tracking

    for rep in range(reps):
        # The two writers are two stages of one invocation: they look for (or create) the same parent run.
        tracking.invocation_key = lambda rep=rep: f"server-test:{rep}"
        barrier(sync, rep, writer)
        with tracking.stage_run(f"stage-{writer}", EXPERIMENT, {"writer": writer, "rep": rep}):
            tracking.log_splits({"train": split(rep)}, dataset=f"rep{rep}")
            for k in range(CANDIDATES):
                with tracking.candidate_run(f"c{k}", {"k": k}):
                    tracking.log_history({"valid_loss": [1.0 / (k + e) for e in range(1, EPOCHS + 1)]})
                    tracking.log_metrics({"valid_error": rep + k / 10})
            tracking.log_metrics({"best": {"valid_error": rep}})


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
