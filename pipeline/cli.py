"""What every stage script shares: argument parsing, logging, and turning known errors into clear exits."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from pipeline.params import Params, ParamsError, load_params

log = logging.getLogger("pipeline")


class StageError(RuntimeError):
    """An error whose message is complete for the user: printed without a traceback."""


def run_stage(name: str, body: Callable[[Params, argparse.Namespace], None], extra_args: Callable | None = None) -> None:
    """Parse `--params`, validate the params file, run `body(params, args)`; exit 2 with a message on bad input."""
    parser = argparse.ArgumentParser(prog=f"python -m pipeline.{name}", description=f"DVC stage `{name}`")
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    if extra_args is not None:
        extra_args(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    try:
        params = load_params(args.params)
        body(params, args)
    except (ParamsError, StageError) as exc:
        print(f"error in stage {name}: {exc}", file=sys.stderr)
        sys.exit(2)
    except Exception as exc:
        # Known input errors from the library carry complete messages too.
        from pipeline.data import DataFileError
        from pipeline.training.errors import CheckpointError, TrainingError

        if isinstance(exc, DataFileError | FileNotFoundError | CheckpointError | TrainingError):
            print(f"error in stage {name}: {exc}", file=sys.stderr)
            sys.exit(2)
        raise
