"""Faults of the services a run talks to (a Dask scheduler, an MLflow server, the sqlite store) and of the dataset
recipes: each stops in seconds with exit 2 and a message naming the address, file or recipe fields, no traceback,
no file changed. The harness is `tests/faults.py`; the fake servers below answer as the faulty service would.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.core import probe
from pipeline.core.errors import StageError
from pipeline.core.probe import HTTP_DEFAULTS
from pipeline.data.benchmarks import common
from pipeline.data.benchmarks.common import RecipeError, Rejections
from pipeline.data.benchmarks.rectangles import sample_sides
from tests.faults import Case, check_case, make_base_project, params_edit, set_key, write

PRETRAIN = ["--dataset", "basic", "--stack", "sda"]
STAGE = "pipeline.stages.{}".format
SMALL = {"train": 20, "valid": 10, "test": 10}
SERVER = "{server}"  # the fake server's address, filled in when the case runs


def row(name: str, **recipe: object) -> object:
    """A params edit: benchmarks.datasets.<name> generated, small, with `recipe`."""
    return params_edit(
        set_key(f"benchmarks.datasets.{name}", {"source": "generated", "sizes": SMALL, "recipe": recipe})
    )


def calibrate(dataset: str, setting: str) -> list[str]:
    """pipeline.calibrate's arguments: a tiny dry run of `dataset` with `--set setting`."""
    return ["--dataset", dataset, "--set", setting, "--train", "20", "--valid", "10", "--dry-run"]


CASES = [
    # A Dask scheduler address where something else listens
    Case(
        "net-dask-silent",
        "pipeline.repro",
        ["--scheduler", SERVER],
        ["error in pipeline.repro", SERVER, "accepts connections", "Dask handshake", "dask scheduler"],
    ),
    Case(
        "net-dask-not-dask",
        "pipeline.repro",
        ["--scheduler", SERVER],
        ["error in pipeline.repro", SERVER, "not in Dask's protocol"],
    ),
    # An MLflow server that answers /health but not its API, or trickles its replies
    Case(
        "net-mlflow-api-500",
        STAGE("pretrain"),
        PRETRAIN,
        [SERVER, "MLFLOW_TRACKING_URI", "not its REST API", "500"],
        env={"MLFLOW_TRACKING_URI": SERVER},
    ),
    Case(
        "net-mlflow-api-404-html",
        STAGE("pretrain"),
        PRETRAIN,
        [SERVER, "not its REST API", "404"],
        env={"MLFLOW_TRACKING_URI": SERVER},
    ),
    Case(
        "net-mlflow-api-not-json",
        STAGE("pretrain"),
        PRETRAIN,
        [SERVER, "not its REST API", "JSON"],
        env={"MLFLOW_TRACKING_URI": SERVER},
    ),
    Case(
        "net-mlflow-slow-health",
        STAGE("pretrain"),
        PRETRAIN,
        [SERVER, "did not answer /health", "within 3 s"],
        env={"MLFLOW_TRACKING_URI": SERVER},
    ),
    Case(
        "net-mlflow-slow-api",
        STAGE("benchmark"),
        ["--dataset", "rect"],
        [SERVER, "did not answer its REST API", "within 3 s"],
        env={"MLFLOW_TRACKING_URI": SERVER},
    ),
    # The sqlite store
    Case(
        "net-sqlite-not-a-database",
        STAGE("pretrain"),
        PRETRAIN,
        ["mlflow.db", "not an SQLite database"],
        write("mlflow.db", b"runs: none yet\n"),
        env={"MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"},
    ),
    Case(
        "net-sqlite-folder",
        STAGE("benchmark"),
        ["--dataset", "rect"],
        ["mlflow.db", "is a folder"],
        lambda p: (p / "mlflow.db" / "x").mkdir(parents=True),
        env={"MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"},
    ),
    # Recipes that cannot be met: refused before anything is drawn
    Case(
        "recipe-rect-side-beyond-image",
        STAGE("benchmark"),
        ["--dataset", "rect"],
        ["benchmarks.datasets.rect", "max_side 40", "max_side <= 28"],
        row("rect", max_side=40),
    ),
    Case(
        "recipe-rect-min-diff",
        STAGE("benchmark"),
        ["--dataset", "rect"],
        ["benchmarks.datasets.rect", "min_diff 30", "max_side - min_side = 26"],
        row("rect", min_diff=30),
    ),
    Case(
        "recipe-rect-img-area",
        STAGE("benchmark"),
        ["--dataset", "rect-img"],
        ["benchmarks.datasets.rect-img", "min_side 26", "min_diff 2", "no rectangle", "25% to 75%"],
        row("rect-img", min_side=26, min_diff=2),
    ),
    Case(
        "recipe-rect-img-area-order",
        STAGE("benchmark"),
        ["--dataset", "rect-img"],
        ["benchmarks.datasets.rect-img", "min_area_frac 0.8", "max_area_frac 0.75", "min_area_frac <= max_area_frac"],
        row("rect-img", min_area_frac=0.8),
    ),
    Case(
        "recipe-rect-img-std-threshold",
        STAGE("benchmark"),
        ["--dataset", "rect-img"],
        ["benchmarks.datasets.rect-img", "std_threshold 0.9", "expected a lower std_threshold"],
        row("rect-img", std_threshold=0.9),
    ),
    Case(
        "recipe-convex-one-set",
        STAGE("benchmark"),
        ["--dataset", "convex"],
        ["benchmarks.datasets.convex", "nonconvex_max_sets 1", "always convex"],
        row("convex", nonconvex_min_sets=1, nonconvex_max_sets=1),
    ),
    # Recipes met too rarely: the rejection loop gives up after 10,000 draws
    Case(
        "recipe-convex-sets-too-rare",
        STAGE("benchmark"),
        ["--dataset", "convex"],
        ["benchmarks.datasets.convex", "sets are too rare", "convex_min_pixels 784", "count_start 1", "1 in 1,000"],
        row("convex", count_start=1, convex_min_pixels=784),
    ),
    Case(
        "recipe-nonconvex-too-rare",
        STAGE("benchmark"),
        ["--dataset", "convex"],
        ["non-convex unions are too rare", "nonconvex_p 1.0"],
        row("convex", nonconvex_p=1.0),
    ),
    # The same recipes in pipeline.calibrate
    Case(
        "recipe-calibrate-rect-min-diff",
        "pipeline.calibrate",
        calibrate("rect", "min_diff=30"),
        ["error in calibrate", "min_diff 30"],
    ),
    Case(
        "recipe-calibrate-too-rare",
        "pipeline.calibrate",
        calibrate("convex", "nonconvex_p=1.0"),
        ["error in calibrate", "non-convex unions are too rare", "nonconvex_p 1.0"],
    ),
]

# The fake server each net- case talks to (see FakeServer)
SERVERS = {
    "net-dask-silent": "silent",
    "net-dask-not-dask": "http-reply",
    "net-mlflow-api-500": "api-500",
    "net-mlflow-api-404-html": "api-404",
    "net-mlflow-api-not-json": "api-not-json",
    "net-mlflow-slow-health": "slow-all",
    "net-mlflow-slow-api": "slow-api",
}


class FakeServer:
    """A TCP server on 127.0.0.1 in threads of this process, answering as a faulty service would (`mode`):

    silent: accepts, never sends; http-reply: sends an HTTP error as soon as a client connects (no Dask);
    api-500 / api-404 / api-not-json: HTTP, /health 200, every other path that status or a body that is no JSON;
    slow-all: every reply one byte each 0.2 s; slow-api: /health at once, the others one byte each 0.2 s."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stopped = threading.Event()
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self) -> str:
        scheme = "tcp" if self.mode in ("silent", "http-reply") else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            if self.mode == "silent":
                self.stopped.wait()
                return
            if self.mode == "http-reply":
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                self.stopped.wait()
                return
            request = b""
            while b"\r\n\r\n" not in request:
                if not (chunk := conn.recv(65536)):
                    return
                request += chunk
            path = request.split(b" ", 2)[1]
            status, body, ctype = self._reply(path)
            head = f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\nConnection: close"
            reply = f"{head}\r\n\r\n".encode() + body
            if self.mode == "slow-all" or (self.mode == "slow-api" and not path.startswith(b"/health")):
                for byte in reply:
                    if self.stopped.wait(0.2):
                        return
                    conn.sendall(bytes([byte]))
            else:
                conn.sendall(reply)
            conn.close()

    def _reply(self, path: bytes) -> tuple[str, bytes, str]:
        if path.startswith(b"/health") or self.mode.startswith("slow"):
            return "200 OK", b"OK" * 500, "text/plain"
        return {
            "api-500": ("500 Internal Server Error", b"Internal Server Error", "text/plain"),
            "api-404": ("404 Not Found", b"<html><body>Not Found</body></html>", "text/html"),
            "api-not-json": ("200 OK", b"<html>a proxy's page</html>", "application/json"),
        }[self.mode]

    def close(self) -> None:
        self.stopped.set()
        self.listener.close()
        for conn in self.connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()


@contextlib.contextmanager
def fake_server(mode: str | None) -> Iterator[FakeServer | None]:
    if mode is None:
        yield None
        return
    server = FakeServer(mode)
    try:
        yield server
    finally:
        server.close()


def filled(case: Case, address: str) -> Case:
    """The case with the fake server's address in place of {server}."""
    fill = lambda text: text.replace(SERVER, address)  # noqa: E731
    return dataclasses.replace(
        case,
        argv=[fill(a) for a in case.argv],
        words=[fill(w) for w in case.words],
        env={k: fill(v) for k, v in case.env.items()},
    )


@pytest.fixture(scope="module")
def base_project(tmp_path_factory) -> Path:
    return make_base_project(tmp_path_factory.mktemp("services") / "base")


@pytest.fixture(scope="module")
def repro_project(tmp_path_factory) -> Path:
    """A DVC project (no git) with one stage, for pipeline.repro; DVC's own files made once, before any case."""
    project = tmp_path_factory.mktemp("services-repro") / "base"
    project.mkdir()
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=project, check=True)
    (project / "in.txt").write_text("in\n")
    stage = {"cmd": "cp in.txt out.txt", "deps": ["in.txt"], "outs": ["out.txt"]}
    (project / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"copy": stage}}))
    subprocess.run([sys.executable, "-m", "dvc", "status", "-q"], cwd=project, check=False)
    return project


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_faulty_service_or_recipe_stops_with_a_clear_message(
    case: Case,
    base_project: Path,
    repro_project: Path,
    tmp_path: Path,
    monkeypatch,
    capsys,
    isolated_mlflow,
    mlflow_store,
):
    for key, value in HTTP_DEFAULTS.items():  # what check_server sets, undone after the case
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(probe, "PROBE_DEADLINE_S", 3.0)  # the trickling servers need 20 s a reply: 3 s shows the bound
    with fake_server(SERVERS.get(case.id)) as server:
        case = filled(case, server.address) if server else case
        base = repro_project if case.module == "pipeline.repro" else base_project
        check_case(case, base, tmp_path, monkeypatch, capsys, mlflow_store)


def test_the_suite_covers_both_areas() -> None:
    kinds = {c.id.split("-")[0] for c in CASES}
    assert kinds == {"net", "recipe"} and len(CASES) >= 8
    assert set(SERVERS) <= {c.id for c in CASES}


def test_a_rejection_loop_ends_once_it_keeps_under_one_draw_in_a_thousand(monkeypatch) -> None:
    tally = Rejections("things", "field 1")
    tally.tally(common.JUDGED_AFTER - 1, 0)  # too few draws to judge
    tally.tally(1000, 11)  # 11 of 10,999 kept: above 1 in 1000
    with pytest.raises(RecipeError, match=r"things are too rare under the recipe \(field 1\)") as error:
        tally.tally(10_000, 0)
    assert isinstance(error.value, StageError) and isinstance(error.value, ValueError)
    # a sampler whose every draw is rejected (as no valid recipe can make it): it stops, it does not spin
    monkeypatch.setattr(common, "JUDGED_AFTER", 500)
    start = time.perf_counter()
    with pytest.raises(RecipeError, match="rectangles are too rare"):
        sample_sides(10, np.random.default_rng(0), 2, 28, 3, area=(0.999, 0.9999))
    assert time.perf_counter() - start < 5
