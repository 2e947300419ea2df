"""A training epoch beside a one-core load: torch's default threads against the stages' thread policy.

    python benchmarks/contention.py [--n 10000] [--hidden 1000] [--batch 32]

Times one bare DAE epoch (TiedAEGroup, K = 1, masking 0.25) in a fresh process, three ways:
  idle        on the idle machine with every core (torch's default);
  default     beside a one-core busy loop, still with every core: OpenMP threads spin and wait on the busy core;
  policy      beside the same load with the threads `pipeline.core.cli.thread_count` picks (cores less busy ones).
The slowdowns are against `idle`. Run on an otherwise idle machine. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EPOCH = """
import sys, time, torch
sys.path.insert(0, {root!r})
from benchmarks.lockstep import dae_epoch
torch.set_num_threads({threads})
x = torch.rand({n}, 784).round()
epoch = dae_epoch(x, 1, {hidden}, {batch}, torch.device("cpu"))
epoch()
t0 = time.perf_counter(); epoch(); print(time.perf_counter() - t0)
"""


def busy(stop: mp.Event) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def epoch_seconds(threads: int, args: argparse.Namespace) -> float:
    code = EPOCH.format(root=str(ROOT), threads=threads, n=args.n, hidden=args.hidden, batch=args.batch)
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--hidden", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from pipeline.core.cli import thread_count

    cores = len(os.sched_getaffinity(0))
    print(
        f"{cores} cores, 1-minute load {os.getloadavg()[0]:.2f} at the start; n={args.n}, hidden={args.hidden}, batch={args.batch}"
    )
    idle = epoch_seconds(cores, args)
    stop = mp.Event()
    load = mp.Process(target=busy, args=(stop,), daemon=True)
    load.start()
    try:
        time.sleep(65)  # let the 1-minute load average see the busy core, as a stage started beside it would
        default = epoch_seconds(cores, args)
        threads, why = thread_count({})
        policy = epoch_seconds(threads, args)
    finally:
        stop.set()
        load.join()
    print(f"{'run':<10}{'threads':>8}{'s/epoch':>10}{'vs idle':>9}")
    for name, t, s in (("idle", cores, idle), ("default", cores, default), ("policy", threads, policy)):
        print(f"{name:<10}{t:>8}{s:>10.2f}{s / idle:>8.2f}x")
    print(f"policy: {why}")
    print(
        json.dumps(
            {
                "cores": cores,
                "idle_s": idle,
                "default_s": default,
                "policy_threads": threads,
                "policy_s": policy,
                "default_slowdown": default / idle,
                "policy_slowdown": policy / idle,
            }
        )
    )


if __name__ == "__main__":
    main()
