"""`dvc repro` on several workers: run the stale stages of dvc.yaml two (or -j) at a time, record each in dvc.lock.

    python -m pipeline.repro -j 2 report@bg-img report@rect-img    # two rows, two stages at a time
    python -m pipeline.repro -j 2                                  # the whole pipeline
    python -m pipeline.repro --dry report@bg-img                   # what would run, in order
    python -m pipeline.repro --scheduler tcp://host:8786           # the commands on a Dask cluster (pipeline/execution/cluster.py)

DVC runs one stage at a time in a workspace (iterative/dvc#755, #5795), and `dvc queue` workers each run a
whole pipeline. A table row is 18 stages, most of them independent of one another, and a stage uses
one core well: with one thread each, two stages on two cores finish a row in about half the wall time.

This does what `dvc repro` does, in parallel: a stage is checked once every stage it depends on is done,
runs only if its code, params or inputs changed (so a stage whose inputs came out the same is skipped, as
with `dvc repro`), and, once its command exits 0, is recorded with `dvc commit` (one at a time, in this
process), exactly the dvc.lock entry `dvc repro` would write. Each command gets OMP_NUM_THREADS = cores / jobs
unless it is set already (the stage scripts respect it), so workers never fight over the cores. A failing stage stops its
dependants only; the others go on, and the exit status is 1. Its log, like every stage's, is under
logs/repro/<stage>.log. In MLflow, the stages of one invocation share a parent run, as under `dvc repro`.
Stopped (Ctrl-C or SIGTERM), it stops the stages it started and releases their DVC locks (DVC keeps a dead
process's locks), so the next run does not find them busy.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.cli import configure_logging, exits_on_bad_input, log
from pipeline.execution import cluster
from pipeline.execution.launcher import Launcher, LocalLauncher, stage_env

LOGS = Path("logs/repro")
BUSY_RECHECK_S = 30.0


@dataclass
class Plan:
    """The stages to consider, each with the stages it waits for (restricted to the plan)."""

    stages: dict[str, Any]
    upstream: dict[str, set[str]] = field(default_factory=dict)

    def ready(self, done: set[str], started: set[str]) -> list[str]:
        """Stages not started whose upstream stages are all done, in the plan's order."""
        return [name for name in self.stages if name not in started and self.upstream[name] <= done]


def plan(repo: Any, targets: list[str], single_item: bool = False) -> Plan:
    """The targets and (unless `single_item`) every stage they depend on; all of dvc.yaml without targets.

    Stages start in the order of the targets given, each target's upstream first (so rows finish one after
    another); without targets, in dvc.yaml's order.
    """
    import networkx as nx

    graph = repo.index.graph  # an edge points from a stage to a stage it depends on
    if targets:
        order = []
        for target in targets:
            for stage in repo.stage.collect(target):
                chain = [stage] if single_item else list(nx.dfs_postorder_nodes(graph, stage))
                order += [s for s in chain if s not in order]
    else:
        order = list(repo.index.stages)
    stages = {stage.addressing: stage for stage in order}
    upstream = {
        stage.addressing: {s.addressing for s in graph.successors(stage) if s.addressing in stages} for stage in order
    }
    return Plan(stages, upstream)


def _changed(repo: Any, name: str) -> bool:
    """Whether the stage must run, judged on dvc.lock as it is now: another process may have recorded it."""
    from dvc.repo import Repo

    with Repo(repo.root_dir) as fresh, fresh.lock:  # DVC's read/write locks on the files require the repo lock
        (stage,) = fresh.stage.collect(name)
        return stage.changed()


def _while_locked(call: Callable[[], Any], tries: int = 20) -> Any:
    """`call()`, waiting (up to a few minutes) while another DVC process holds the repo lock."""
    from dvc.lock import LockError

    for attempt in range(tries):
        try:
            return call()
        except LockError:
            if attempt == tries - 1:
                raise
            time.sleep(10)


def _commit(repo: Any, name: str) -> None:  # `dvc commit -f name`
    _while_locked(lambda: repo.commit(name, force=True))


def _remove_outs(repo: Any, stage: Any) -> None:
    """What `dvc repro` does before a command: remove its outputs (but persist ones), under DVC's repo lock."""

    def remove() -> None:
        with repo.lock:
            stage.remove_outs(ignore_remove=False, force=False)

    _while_locked(remove)


def _hold_files(repo: Any, stage: Any) -> contextlib.AbstractContextManager:
    """DVC's read/write lock on the stage's files, held while its command runs (as `dvc repro` holds it), so a
    second `pipeline.repro` or a `dvc repro` in this workspace sees the stage as busy instead of running it too.
    """
    from dvc.rwlock import rwlock

    paths = lambda items: [item.fs_path for item in items if hasattr(item, "fs_path")]  # noqa: E731
    hardlink = repo.config["core"].get("hardlink_lock", False)
    # DVC names the holder by pid and command line; ours must match what its own calls here (commit) will use
    return rwlock(repo.tmp_dir, repo.fs, " ".join(sys.argv), paths(stage.deps), paths(stage.outs), hardlink)


def run(
    repo: Any, the_plan: Plan, jobs: int, dry: bool = False, poll_s: float = 1.0, launcher: Launcher | None = None
) -> list[str]:
    """Run the plan's stale stages, `jobs` at a time (locally; on a cluster, as the launcher places them); return
    the stages that failed (or could not run)."""
    launcher = launcher or LocalLauncher(jobs, repo.root_dir)
    running: dict[str, tuple[Any, float, contextlib.ExitStack]] = {}
    try:
        return _run(repo, the_plan, launcher, dry, poll_s, running)
    except BaseException:  # Ctrl-C, SIGTERM: stop the stages started and release their files' DVC locks
        launcher.stop([handle for handle, _, _ in running.values()])
        for name, (_, _, held) in running.items():
            held.close()
            log.error("stopped %s, not recorded in dvc.lock", name)
        raise


def _run(
    repo: Any, the_plan: Plan, launcher: Launcher, dry: bool, poll_s: float, running: dict[str, tuple]
) -> list[str]:
    from dvc.lock import LockError

    done: set[str] = set()
    started: set[str] = set()
    failed: list[str] = []
    would_run: set[str] = set()
    busy_until: dict[str, float] = {}  # stages another process is running: look again after this time
    LOGS.mkdir(parents=True, exist_ok=True)
    while True:
        for name, (handle, t0, held) in list(running.items()):
            if (code := launcher.poll(handle)) is None:
                continue
            del running[name]
            minutes = (time.monotonic() - t0) / 60
            with held:
                if code == 0:
                    _commit(repo, name)
            if code == 0:
                done.add(name)
                log.info("done    %s in %.1f min, recorded in dvc.lock", name, minutes)
            else:
                failed.append(name)
                log.error("FAILED  %s (exit %d after %.1f min): see %s", name, code, minutes, LOGS / f"{name}.log")
        blocked = {name for name in the_plan.stages if the_plan.upstream[name] & set(failed)}
        busy = {name for name, until in busy_until.items() if until > time.monotonic()}
        while len(running) < launcher.jobs and (ready := the_plan.ready(done, started | blocked | busy)):
            name = ready[0]  # one at a time: a stage found current may make the next in line ready
            stage = the_plan.stages[name]
            after_a_rerun = dry and bool(the_plan.upstream[name] & would_run)  # its inputs would change
            held = contextlib.ExitStack()  # the stage's files, locked before the check so no one starts it meanwhile
            try:
                if not dry:
                    held.enter_context(_hold_files(repo, stage))
                changed = bool(stage.cmd) and (after_a_rerun or _changed(repo, name))
            except LockError:
                held.close()
                if name not in busy_until:
                    log.info("busy    %s: another process is running it; waiting", name)
                busy_until[name] = time.monotonic() + BUSY_RECHECK_S
                busy.add(name)
                continue
            busy_until.pop(name, None)
            started.add(name)
            if not changed or dry:
                held.close()
                done.add(name)
                if changed:
                    would_run.add(name)
                    log.info("would run %s: %s", name, stage.cmd)
                else:
                    log.info("current %s", name)
                continue
            # As `dvc repro`: the outputs go first (persist ones stay), so a folder keeps no file of an earlier run
            # (a candidate the grid no longer has) and the hash dvc.lock records is the command's alone.
            _remove_outs(repo, stage)
            running[name] = (launcher.start(name, stage.cmd, LOGS / f"{name}.log"), time.monotonic(), held)
            log.info("start   %s (%d running, %d of %d done)", name, len(running), len(done), len(the_plan.stages))
        if not running and not the_plan.ready(done, started | blocked):
            break
        launcher.wait([handle for handle, _, _ in running.values()], poll_s)
    not_run = [name for name in the_plan.stages if name not in done and name not in failed]
    if not_run:
        log.error("not run, an upstream stage failed: %s", ", ".join(not_run))
    return failed + not_run


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through run(), which stops its stages and releases their locks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.repro", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("targets", nargs="*", help="stages (as for dvc repro); all of dvc.yaml when none")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="stages run at once (default 2)")
    parser.add_argument("-s", "--single-item", action="store_true", help="only the targets, not their upstream")
    parser.add_argument("--dry", action="store_true", help="print what would run, run nothing")
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the commands on this Dask cluster (tcp://host:8786; default DASK_SCHEDULER_ADDRESS, "
        "else this machine, -j at a time)",
    )
    parser.add_argument(
        "--workspace", metavar="PATH", help="the workspace's path on the Dask workers (default: the same path as here)"
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    configure_logging()
    signal.signal(signal.SIGTERM, _stop)

    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        repo = Repo(".")
        the_plan = plan(repo, args.targets, args.single_item)
    except DvcException as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    launcher: Launcher | None = None
    if address := args.scheduler or cluster.configured_address():
        workspace = args.workspace or repo.root_dir
        with exits_on_bad_input("pipeline.repro"):  # a ClusterError: exit 2 with its message
            launcher = cluster.DaskLauncher(cluster.connect(address, workspace), workspace, list(the_plan.stages))
        log.info("%d stages to check, on the Dask cluster at %s", len(the_plan.stages), address)
    else:
        log.info(
            "%d stages to check, %d at a time, %s threads each",
            len(the_plan.stages),
            args.jobs,
            stage_env(args.jobs)["OMP_NUM_THREADS"],
        )
    try:
        return 1 if run(repo, the_plan, args.jobs, dry=args.dry, launcher=launcher) else 0
    finally:
        if launcher is not None:
            launcher.close()


if __name__ == "__main__":
    sys.exit(main())
