"""pipeline.execution.cluster without a cluster: which stages ask for a GPU, how a command is run, which address is used."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline.execution import cluster


class FakeClient:
    """What DaskLauncher asks of a `distributed.Client`: the workers' resources, and submit (recorded)."""

    def __init__(self, resources: list[dict[str, float]]) -> None:
        self.workers = {f"tcp://w{i}": {"resources": r} for i, r in enumerate(resources)}
        self.submitted: dict[str, dict[str, Any]] = {}

    def scheduler_info(self, n_workers: int = 5) -> dict[str, Any]:
        return {"workers": self.workers}

    def submit(self, fn, *args, key: str, **kwargs) -> str:
        self.submitted[args[3]["DVC_STAGE"]] = kwargs
        return key


COMMANDS = {
    "pretrain@rect-sda": "python -m pipeline.stages.pretrain --dataset rect --stack sda",
    "finetune@rect-sda": "python -m pipeline.stages.finetune --dataset rect --stack sda",
    "evaluate@rect-sda": "python -m pipeline.stages.evaluate --dataset rect --stack sda",
    "zoo_train@vae": "python -m pipeline.stages.zoo_train --variant vae",
    "evaluate_svm@rect-rbf": "python -m pipeline.stages.evaluate_svm --dataset rect --kernel rbf",
    "report@rect": "python -m pipeline.stages.report --dataset rect",
}


@pytest.mark.parametrize("resources", [[{}, {}], [{"GPU": 1}, {}]])
def test_training_stages_ask_for_a_gpu_only_where_a_worker_declares_one(resources: list[dict[str, float]]) -> None:
    client = FakeClient(resources)
    launcher = cluster.DaskLauncher(client, "/work", list(COMMANDS))
    for name, cmd in COMMANDS.items():
        launcher.start(name, cmd, Path(f"logs/repro/{name}.log"))
    asked = {name for name, kwargs in client.submitted.items() if kwargs["resources"]}
    gpu = any(r.get("GPU") for r in resources)
    assert asked == ({"pretrain@rect-sda", "finetune@rect-sda", "evaluate@rect-sda", "zoo_train@vae"} if gpu else set())
    assert all(kwargs["resources"] in (None, {"GPU": 1}) for kwargs in client.submitted.values())
    # the plan's order is Dask's priority: the first stage planned runs first when workers are scarce
    priorities = [client.submitted[name]["priority"] for name in COMMANDS]
    assert priorities == sorted(priorities, reverse=True)


def test_plain_commands_run_without_a_shell_so_they_die_with_their_worker() -> None:
    assert cluster.command_argv("python -m pipeline.stages.prepare") == ["python", "-m", "pipeline.stages.prepare"]
    assert cluster.command_argv("a && b > c")[:2] == ["/bin/sh", "-c"]


def test_the_scheduler_address_is_the_one_dask_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    import dask.config

    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://10.0.0.1:8786")
    dask.config.refresh()
    try:
        assert cluster.configured_address() == "tcp://10.0.0.1:8786"
        monkeypatch.delenv("DASK_SCHEDULER_ADDRESS")
        dask.config.refresh()
        assert cluster.configured_address() is None
    finally:
        dask.config.refresh()
