"""What every stage script shares: argument parsing, logging, and turning known errors into clear exits.

Stage scripts import their libraries inside `main`, after the arguments are parsed, so that
`python -m pipeline.stages.<stage> --help` answers at once instead of after seconds of torch and
mlflow imports. This module imports nothing heavy at the top for the same reason.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.core.errors import StageError

if TYPE_CHECKING:
    from pipeline.params import ModelSpec, Params

log = logging.getLogger("pipeline")


def run_stage(
    name: str,
    doc: str | None,
    body: Callable[[Params, argparse.Namespace], None],
    extra_args: Callable[[argparse.ArgumentParser], Any] | None = None,
) -> None:
    """Parse `--params` (and the stage's own arguments), validate the params file, run `body(params, args)`.

    `doc` (the stage module's docstring) is the `--help` text. Bad input exits 2 with a message naming
    the file, key or value; nothing is written.
    """
    parser = argparse.ArgumentParser(
        prog=f"python -m pipeline.stages.{name}", description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    if extra_args is not None:
        extra_args(parser)
    args = parser.parse_args()
    configure_logging()

    from pipeline.params import load_params

    set_threads()
    with exits_on_bad_input(f"stage {name}"):
        body(load_params(args.params), args)


# The errors whose message is complete for the user: every StageError (params, data, model files, training, the
# tracking store, recipes...) and the OS's file errors (a file not found, a read-only folder, a full disk).
BAD_INPUT = (StageError, OSError)


@contextlib.contextmanager
def exits_on_bad_input(who: str) -> Iterator[None]:
    """The one error wrapper of the stages and the tools: a known error exits 2 with `error in <who>: <message>`.

    An OSError (a file not found, a read-only folder, a full disk) is printed with the file it names.
    """
    try:
        yield
    except BAD_INPUT as exc:
        print(f"error in {who}: {describe(exc)}", file=sys.stderr)
        sys.exit(2)


def describe(exc: BaseException) -> str:
    """The user's message of a known error: its text, or for an OS error its reason and the file it names."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return str(exc)


def configure_logging() -> None:
    """One log format for the stages and the tools (`explore`, `seeds`): time, logger, level, message."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", datefmt="%H:%M:%S")


def tool_parser(doc: str | None, out: str) -> argparse.ArgumentParser:
    """The arguments every tool outside `dvc repro` shares: --params, --out (default `out`), --device, --no-progress."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default=out, type=Path)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def thread_count(env: dict[str, str] | None = None) -> tuple[int, str]:
    """How many threads a stage's torch and joblib work may use, and why.

    OMP_NUM_THREADS wins when set (DVC queue workers and CI can split the cores with it). Otherwise the
    cores this process may run on, less those other processes keep busy (the 1-minute load average):
    torch's OpenMP threads spin, and two threads on two cores beside one busy process run 10-20x slower
    than one thread would.
    """
    import os

    if threads := omp_threads(env):
        return threads, "OMP_NUM_THREADS"
    cores = usable_cores()
    busy = int(os.getloadavg()[0] + 0.5) if hasattr(os, "getloadavg") else 0
    return max(1, cores - busy), f"{cores} cores, about {busy} busy with other work"


def cores_per_job(jobs: int, env: dict[str, str] | None = None) -> int:
    """The threads each of `jobs` commands run side by side may use (pipeline.repro's workers, a Dask worker's
    tasks): OMP_NUM_THREADS when set, else an equal share of the cores, at least one."""
    return omp_threads(env) or max(1, usable_cores() // jobs)


def omp_threads(env: dict[str, str] | None = None) -> int | None:
    """OMP_NUM_THREADS when it is a positive integer (the one override of every thread policy here), else None."""
    import os

    value = (os.environ if env is None else env).get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container or `taskset` narrows)."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def set_threads() -> None:
    import torch

    threads, why = thread_count()
    torch.set_num_threads(threads)
    log.info("using %d thread(s) (%s)", threads, why)


def row_args(parser: argparse.ArgumentParser) -> None:
    """The Vincent stages' matrix: `--dataset` (a row of the table) and `--stack` (a pretraining stack)."""
    parser.add_argument("--dataset", required=True, help="an entry of vincent.datasets in params.yaml")
    parser.add_argument("--stack", required=True, help="a key of vincent.stacks in params.yaml")


def dataset_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="an entry of vincent.datasets in params.yaml")


def check_choice(flag: str, value: str, key: str, choices: Collection[str]) -> None:
    """A stage's `--flag value` must name an entry of params key `key`; else a StageError naming both."""
    if value not in choices:
        raise StageError(f"{flag} {value!r} is not in {key}; expected one of {sorted(choices)}")


@contextlib.contextmanager
def row_stage(
    stage: str, params: Params, args: argparse.Namespace, settings: dict[str, Any]
) -> Iterator[dict[str, ModelSpec]]:
    """The opening of the Vincent stages per (dataset, stack) (pretrain, finetune, evaluate): check the arguments and
    run the body inside the stage's MLflow run, with the stack's spec and the stage's `settings` logged as params.
    Yields the models built on the stack."""
    from pipeline.core import tracking

    v = params.vincent
    check_choice("--dataset", args.dataset, "vincent.datasets", v.datasets)
    check_choice("--stack", args.stack, "vincent.stacks", v.stacks)
    check_choice(
        "--stack",
        args.stack,
        f"vincent.rows.{args.dataset}.stacks (the stacks the row runs)",
        v.stacks_of(args.dataset),
    )
    models = v.models_of(args.stack)
    logged = {
        "dataset": args.dataset,
        "stack": args.stack,
        "spec": v.stack_for(args.dataset, args.stack).model_dump(),
        "models": {k: m.model_dump() for k, m in models.items()},
        **settings,
    }
    run_name = f"{stage} {args.dataset} {args.stack}"
    with tracking.stage_run(stage, params.tracking.experiment, logged, run_name=run_name):
        yield models
