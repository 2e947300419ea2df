"""The smoke table serially (`dvc repro`) and on a loopback Dask cluster of two one-thread workers
(`python -m pipeline.repro --scheduler`), in two copies of the project: the wall-time ratio, and whether the two
runs wrote the same dvc.lock and outputs.

    python benchmarks/cluster.py            # the smoke table and corrupt@basic, as tests/test_pipeline_e2e.py runs it
    python benchmarks/cluster.py report@rect

The target on an idle 2-core machine: the Dask run at most 0.7x the serial one. Each run's stages are small, so
most of a stage's time is starting Python and importing torch, MLflow and DVC: the ratio measures the pipeline's
parallelism (two stages at once), not a speed-up of any training.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import mirror_root, smoke_env, smoke_project  # noqa: E402
from tests.test_cluster import Cluster, outputs  # noqa: E402


def timed(cmd: list[str], project: Path) -> float:
    t0 = time.monotonic()
    result = subprocess.run(
        cmd, cwd=project, env=smoke_env(project) | {"OMP_NUM_THREADS": "1"}, capture_output=True, text=True
    )
    if result.returncode:
        logs = "".join(
            f"--- {p.name}\n{p.read_text()[-3000:]}"
            for p in (project / "logs/repro").glob("*.log")
            if "Error" in p.read_text()
        )
        sys.exit(f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}\n{logs}")
    return time.monotonic() - t0


def timeless(stages: dict) -> dict:
    """dvc.lock's stages less the hash of each row's report, whose "Wall time per stage" records this run's times."""
    for name, stage in stages.items():
        if name.startswith("report@"):
            stage["outs"] = [o for o in stage["outs"] if not o["path"].startswith("reports/vincent/")]
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="*", default=["table", "corrupt@basic"])
    args = parser.parse_args()
    mirror = mirror_root()
    if mirror is None:
        sys.exit("no MNIST mirror (set PIPELINE_DATA_MIRROR to a folder holding MNIST/raw/*.gz)")
    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory() as tmp:
        serial = smoke_project(Path(tmp) / "serial", mirror)
        spread = smoke_project(Path(tmp) / "dask", mirror)
        for project in (serial, spread):  # a migrated MLflow store in both, so both runs do the same work
            MlflowClient(tracking_uri=smoke_env(project)["MLFLOW_TRACKING_URI"]).search_experiments()
        (Path(tmp) / "dask-logs").mkdir()
        cluster = Cluster(Path(tmp) / "dask-logs")
        try:
            cluster.add_worker()
            cluster.add_worker()
            cluster.wait_for(2)
            t_serial = timed(["dvc", "repro", *args.targets], serial)
            t_dask = timed(
                [sys.executable, "-m", "pipeline.repro", "--scheduler", cluster.address, *args.targets], spread
            )
        finally:
            cluster.close()
        lock = lambda p: timeless(yaml.safe_load((p / "dvc.lock").read_text())["stages"])  # noqa: E731
        same_lock = lock(serial) == lock(spread)
        for name in sorted(set(lock(serial)) | set(lock(spread))):
            if lock(serial).get(name) != lock(spread).get(name):
                print(
                    f"dvc.lock differs at {name}:\n  serial {lock(serial).get(name)}\n  dask   {lock(spread).get(name)}"
                )
        same_outputs = outputs(serial) == outputs(spread)
    print(f"targets: {' '.join(args.targets)}")
    print(f"serial dvc repro:                    {t_serial:7.1f} s")
    print(f"pipeline.repro on 2 Dask workers:    {t_dask:7.1f} s")
    print(f"ratio (Dask / serial):               {t_dask / t_serial:7.2f}x   (target <= 0.7x)")
    print(f"same dvc.lock (but the rows' reports' timings): {same_lock}; same outputs: {same_outputs}")
    sys.exit(0 if same_lock and same_outputs else 1)


if __name__ == "__main__":
    main()
