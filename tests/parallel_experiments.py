"""Demonstration: queued DVC experiments run two at a time, each with its own complete MLflow run.

    python -m tests.parallel_experiments [--experiments 3] [--jobs 2]

On a temporary copy of the project with the smoke profile: commits a baseline, queues experiments
with `dvc exp run --queue -S seed=N`, starts one `mlflow server` on localhost (sqlite behind it, so
parallel workers never write the database file themselves), runs `dvc queue start -j 2`, and then
checks that every experiment succeeded and has exactly one parent MLflow run whose children cover
every stage, all FINISHED. Prints a summary table; exits 1 on any failure. Takes a few minutes.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from tests.conftest import ROOT, copy_project, mirror_root, rewire


def sh(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_runs(client, experiments: list[str], names: list[str], stages: list[str]) -> bool:
    """Every queued experiment has one parent run per MLflow experiment, whose children cover every stage."""
    runs = [
        r
        for e in experiments
        for r in client.search_runs([client.get_experiment_by_name(e).experiment_id], max_results=10_000)
    ]
    ok = True
    print(f"{'experiment':<12} {'parent runs':>11} {'stage runs':>10} {'all FINISHED':>12}")
    for name in names:
        parents = {
            r.info.run_id for r in runs if r.data.tags.get("pipeline.role") == "parent" and r.info.run_name == name
        }
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") in parents]
        covered = {r.data.tags.get("dvc.stage") for r in children}
        finished = all(r.info.status == "FINISHED" for r in children)
        good = len(parents) == len(experiments) and covered == set(stages) and len(children) == len(stages) and finished
        ok &= good
        print(f"{name:<12} {len(parents):>11} {len(children):>10} {str(finished):>12}{'' if good else '  <- FAIL'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    from mlflow.tracking import MlflowClient

    workdir = Path(tempfile.mkdtemp(prefix="parallel-exps-"))
    project = copy_project(workdir / "project")
    params = yaml.safe_load((ROOT / "tests/smoke_params.yaml").read_text())
    params["data"]["mirrors"] = [str(mirror_root())] if mirror_root() else []
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    rewire(project)
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PIPELINE_OFFLINE": "1" if mirror_root() else "0"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{workdir / 'mlflow.db'}",
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ.copy(),
    )
    try:
        for _ in range(120):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(1)
        git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
        sh([*git, "add", "-A"], project, env)
        sh([*git, "commit", "-qm", "baseline"], project, env)
        names = []
        for i in range(args.experiments):
            name = f"seed-{100 + i}"
            sh(["dvc", "exp", "run", "--queue", "--name", name, "-S", f"seed={100 + i}"], project, env)
            names.append(name)
        start = time.time()
        sh(["dvc", "queue", "start", "-j", str(args.jobs)], project, env)
        while True:
            status = sh(["dvc", "queue", "status"], project, env)
            if not any(word in status for word in ("Queued", "Running")):
                break
            time.sleep(5)
        elapsed = time.time() - start
        print(status)
        failed = [n for n in names if f"{n}" in status and "Failed" in status.split(n, 1)[1].splitlines()[0]]
        client = MlflowClient(tracking_uri=uri)
        ok = not failed
        ok &= check_runs(
            client,
            [params["tracking"]["experiment"], params["zoo"]["experiment"]],
            names,
            sh(["dvc", "stage", "list", "--name-only"], project, env).split(),
        )
        print(
            f"{len(names)} experiments, -j {args.jobs}: {elapsed:.0f} s; {'OK' if ok else 'FAILED'} (workdir {workdir})"
        )
        return 0 if ok else 1
    finally:
        server.terminate()


if __name__ == "__main__":
    sys.exit(main())
