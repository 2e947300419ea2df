"""A stage's wall time, counted across interruptions: logs/timings/<DVC stage>.json.

A long stage killed part-way (a session ends, a machine is taken back) resumes from its checkpoints when it runs
again, and the run that finishes it measures only its own part. So while a stage runs, a heartbeat thread writes
its elapsed time to logs/timings/<stage>.running.json once a minute; the next run of that stage adds what a killed
run left there to its own `interrupted_seconds`, and the finished record's `seconds` is the stage's whole cost since
it last finished: every run of it, the killed ones included, at a minute's resolution for each of those.

A stage that fails with an error (not killed) leaves its time there too: a retry after a fix counts it, which is
the cost of getting the output, not of the last run. The files are git-ignored and no DVC output: timings change
on every run, and a deterministic rerun must leave every tracked file as it was.

A machine that lost them (a fresh clone, a lost cache) and only regenerated a row's stages to build on them
measures the regeneration, not the stage's cost: `python -m pipeline.core.timings restore <row> --keep cae2 ...`
puts back the times the row's committed report recorded (results/report/<row>.json) for every stage but those of
the stacks named in --keep (the ones that really ran for the first time here).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

from pipeline.common.io import DamagedFileError, write_json
from pipeline.core import paths

TIMINGS = Path("logs/timings")
HEARTBEAT_S = 60.0

_active: dict[str, Any] = {}  # this process's heartbeat: earlier (seconds), runs, stop (event), thread


def _running(name: str) -> Path:
    return TIMINGS / f"{name}.running.json"


def _left(name: str) -> tuple[float, int]:
    """The seconds and number of the killed runs of `name` that its .running.json counts (0, 0 without one)."""
    try:
        left = json.loads(_running(name).read_text())
    except (OSError, ValueError):  # none there, or unreadable: count nothing
        return 0.0, 0
    return float(left.get("interrupted_seconds", 0.0)) + float(left.get("seconds", 0.0)), int(left.get("runs", 0))


@contextlib.contextmanager
def heartbeat(name: str, every: float = HEARTBEAT_S) -> Iterator[None]:
    """While the block runs, keep logs/timings/<name>.running.json current: the seconds of earlier killed runs of
    `name` (found in that file on entry) and of this one so far. `finish` reads it; a kill leaves it for the next run.
    """
    earlier, runs = _left(name)
    start, stop = time.perf_counter(), threading.Event()

    def write() -> None:
        write_json(
            _running(name),
            {
                "stage": name,
                "interrupted_seconds": round(earlier, 1),
                "runs": runs + 1,
                "seconds": round(time.perf_counter() - start, 1),
            },
        )

    def beat() -> None:
        write()
        while not stop.wait(every):
            write()
        write()  # to the end, for a run that fails (a finished one's file is removed after)

    thread = threading.Thread(target=beat, name=f"heartbeat {name}", daemon=True)
    _active.update(earlier=earlier, runs=runs, stop=stop, thread=thread)
    thread.start()
    try:
        yield
    except BaseException:  # killed by a signal Python sees, or failed: the file stays for the next run to count
        _stop()
        raise
    else:  # a stage that records no timing (report, table) leaves nothing behind
        if _stop():
            _running(name).unlink(missing_ok=True)


def _stop() -> bool:
    """Stop this process's heartbeat; True if one was running."""
    if not _active:
        return False
    _active["stop"].set()
    _active["thread"].join()
    _active.clear()
    return True


def finish(name: str, seconds: float) -> dict[str, Any]:
    """The finished stage's record (this run's `seconds` plus what killed runs of it spent), written to
    logs/timings/<name>.json; the heartbeat's file is removed. Returns the record."""
    if _active:  # one stage per process: the heartbeat is this stage's (started under the same DVC_STAGE name)
        earlier, runs = _active["earlier"], _active["runs"]
        _stop()
    else:  # no heartbeat (a stage run by hand): a killed run's file under this name still counts
        earlier, runs = _left(name)
    record = _record(name, seconds, earlier, runs, time.strftime("%Y-%m-%dT%H:%M:%S"))
    write_json(TIMINGS / f"{name}.json", record)
    _running(name).unlink(missing_ok=True)
    return record


def _record(name: str, seconds: float, earlier: float, runs: int, finished: str) -> dict[str, Any]:
    """A finished stage's logs/timings/<name>.json: this run's `seconds` plus `earlier` killed runs' (`runs` of them)."""
    return {
        "stage": name,
        "seconds": round(seconds + earlier, 1),
        "this_run_seconds": round(seconds, 1),
        "interrupted_seconds": round(earlier, 1),
        "interrupted_runs": runs,
        "finished": finished,
    }


def restore(report: str | Path, keep: Collection[str] = (), timings: str | Path | None = None) -> dict[str, float]:
    """Write logs/timings/<stage>.json from a row report's committed `stage_seconds` (results/report/<row>.json)
    for every stage it timed, except those in `keep`: a stack (the stages `<kind>@<row>-<stack>`) or a stage kind
    (`benchmark` for `benchmark@<row>`). Returns {stage: seconds} of what it wrote; DamagedFileError naming the file
    if the report has no such mapping."""
    report = Path(report)
    row = report.stem
    try:
        seconds = json.loads(report.read_text())["stage_seconds"]
        if not isinstance(seconds, dict):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DamagedFileError(
            f'{report}: expected a row report\'s JSON {{"stage_seconds": {{<stage>: seconds or null}}}} '
            f"({type(e).__name__}: {e})"
        ) from e
    keep = set(keep)
    out_dir = Path(timings) if timings is not None else TIMINGS
    written = {}
    for stage, value in seconds.items():
        kind, _, item = stage.partition("@")
        stack = item.removeprefix(f"{row}-") if item.startswith(f"{row}-") else None  # rot-bg-img-sda: sda
        if value is None or kind in keep or stack in keep:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DamagedFileError(f"{report}: stage_seconds of {stage!r} is {value!r}, not a number of seconds")
        record = _record(stage, float(value), 0.0, 0, f"committed ({report})")
        write_json(out_dir / f"{stage}.json", record)
        written[stage] = record["seconds"]
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.core.timings", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("restore", help="put back a row's committed stage times (see the module's docstring)")
    r.add_argument("row", help="a row of the table: reads results/report/<row>.json")
    r.add_argument(
        "--keep",
        nargs="*",
        default=[],
        metavar="STACK",
        help="stacks (or stage kinds, e.g. benchmark) whose times this machine measured: left as they are",
    )
    args = parser.parse_args(argv)
    report = paths.vincent_row(args.row).with_suffix(".json")
    try:
        written = restore(report, args.keep)
    except (DamagedFileError, OSError) as e:  # as pipeline.core.cli.exits_on_bad_input, which imports this module
        print(f"error in pipeline.core.timings restore: {e}", file=sys.stderr)
        sys.exit(2)
    for stage, value in written.items():
        print(f"restored {stage}: {value:.1f} s")


if __name__ == "__main__":
    main()
