"""Scale on paper: the whole table's and the wide search's wall time on 1, 2, 4, 8 and 16 workers, from measured times.

    python benchmarks/scale.py          # -> reports/scale/scale.md, reports/scale/scale.png

The table: every stage upstream of `table` in dvc.yaml (DVC's own graph, as `pipeline.repro` plans it), each with
its measured wall time ("Wall time per stage" of reports/vincent/<row>.md: one thread per stage on a 2-core CPU).
The search: `python -m pipeline.explore`'s work on basic (reports/search/basic.json, measured on an H100), in
shards a Dask worker could take: each width's pretraining (ae, rbm), then each column's fine-tuning at that width,
SdA-3's 108 candidates as its three lockstep groups of 36.

Each makespan is a list schedule (a free worker takes the ready stage with the longest path to the end, as Dask's
priorities would), with its two lower bounds: the critical path and the total work / N. GPU times are estimates,
never measurements of a stage: training stages (pretrain, finetune) divided by the speed of the committed H100
epochs (reports/benchmarks/gpu_lockstep.txt, one candidate at a time, so an upper bound on a grouped stage's time)
against the CPU's (reports/benchmarks/cpu_overhead.txt); the SVM, evaluation, data and report stages kept at their
CPU times. The search on CPU: its layer- and candidate-epochs (basic.json) times the CPU's epoch.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORKERS = [1, 2, 4, 8, 16]
ROWS = ["basic", "rot", "bg-rand", "bg-img", "rot-bg-img", "rect", "rect-img", "convex"]
# Stages whose time no report lists: filters (README "Performance": 1.1 min), table and each row's report (a few
# seconds of tables and figures; 30 and 60 s assumed)
UNLISTED_S = {"filters": 66.0, "table": 30.0}
REPORT_S = 60.0
# The lab's DBN stacks (dbn1j, dbn3j) have not run on the full rows yet: estimated from the row's `dbn` stages.
# dbn3j pretrains dbn's three layers (the first two bit for bit, the top jointly with the labels), dbn1j one
# layer; `finetune@<row>-dbn` and `evaluate@<row>-dbn` serve two models (DBN-1, DBN-3), each j stack one.
JOINT_FROM_DBN = {
    ("pretrain", "dbn3j"): 1.0,
    ("pretrain", "dbn1j"): 1 / 3,
    ("finetune", "dbn3j"): 0.5,
    ("finetune", "dbn1j"): 0.5,
    ("evaluate", "dbn3j"): 0.5,
    ("evaluate", "dbn1j"): 0.5,
}
# Seconds per candidate-epoch, 784-1000, 10,000 digits, batch 32: CPU (cpu_overhead.txt, the pipeline's epoch)
# and H100 (gpu_lockstep.txt, K = 1, TF32 off)
CPU_EPOCH_S = {"dae": 1.357, "rbm": 1.585, "finetune": 2.610}
GPU_EPOCH_S = {"dae": 0.0974, "rbm": 0.2377, "finetune": 0.6602}
SPEED = {k: CPU_EPOCH_S[k] / GPU_EPOCH_S[k] for k in CPU_EPOCH_S}  # how much faster an H100 epoch is
# A stack of 2000 units against 1000: the H100 pretrained the ae stacks in 98 s against 49 (basic.log); on the CPU,
# compute-bound, by the weights: (784*2000 + 2*2000^2) / (784*1000 + 2*1000^2)
H2000_GPU, H2000_CPU = 98.0 / 49.2, (784 * 2000 + 2 * 2000**2) / (784 * 1000 + 2 * 1000**2)


def stage_times() -> dict[str, float]:
    """Every stage's seconds from the rows' reports ("Wall time per stage")."""
    times = dict(UNLISTED_S)
    for row in ROWS:
        text = (ROOT / f"reports/vincent/{row}.md").read_text().split("## Wall time per stage", 1)[1]
        times |= {name: float(s) for name, s in re.findall(r"^\| (\S+@?\S*) \| ([\d.]+) \|$", text, re.M)}
        times.setdefault(f"report@{row}", REPORT_S)
        for (stage, stack), share in JOINT_FROM_DBN.items():
            times.setdefault(f"{stage}@{row}-{stack}", share * times[f"{stage}@{row}-dbn"])
    return times


def table_dag() -> dict[str, set[str]]:
    """Every stage upstream of `table` (itself included) -> the stages it waits for: dvc.yaml through DVC."""
    from dvc.repo import Repo

    from pipeline.repro import plan

    with Repo(str(ROOT)) as repo:
        the_plan = plan(repo, ["table"])
    return the_plan.upstream


def gpu_time(name: str, seconds: float, kind: dict[str, str]) -> float:
    stage = name.split("@")[0]
    if stage == "pretrain":
        return seconds / SPEED[kind.get(name, "dae")]
    if stage == "finetune":
        return seconds / SPEED["finetune"]
    return seconds


def search_dag() -> tuple[dict[str, float], dict[str, float], dict[str, set[str]]]:
    """The wide search's shards: seconds on the H100 (measured; 2000 units scaled where it did not get there),
    seconds on the CPU (its layer- and candidate-epochs times the CPU's epoch), and their dependencies."""
    summary = json.loads((ROOT / "reports/search/basic.json").read_text())
    gpu, cpu, upstream = {}, {}, {}
    for kind, epoch_s in (("ae", CPU_EPOCH_S["dae"]), ("rbm", CPU_EPOCH_S["rbm"])):
        done = summary["pretraining"][f"{kind}-h1000"]
        for width, gpu_scale, cpu_scale in ((1000, 1, 1), (2000, H2000_GPU, H2000_CPU)):
            name = f"pretrain {kind}-h{width}"
            measured = summary["pretraining"].get(f"{kind}-h{width}", {}).get("seconds")
            gpu[name] = measured or done["seconds"] * gpu_scale
            cpu[name] = done["layer_epochs_trained"] * epoch_s * cpu_scale
            upstream[name] = set()
    for column in ("SAA-3", "SdA-3", "DBN-1", "DBN-3"):
        done = summary["finetuning"][f"{column}-h1000"]
        groups = 3 if column == "SdA-3" else 1  # 108 candidates = three lockstep groups of 36
        for width, gpu_scale, cpu_scale in ((1000, 1, 1), (2000, H2000_GPU, H2000_CPU)):
            for g in range(groups):
                name = f"finetune {column}-h{width}" + (f" group {g + 1}" if groups > 1 else "")
                gpu[name] = done["seconds"] * gpu_scale / groups
                cpu[name] = done["candidate_epochs"] * CPU_EPOCH_S["finetune"] * cpu_scale / groups
                upstream[name] = {f"pretrain {'rbm' if column.startswith('DBN') else 'ae'}-h{width}"}
    return gpu, cpu, upstream


def longest_to_end(times: dict[str, float], upstream: dict[str, set[str]]) -> dict[str, float]:
    """Each stage's time plus the longest chain of stages waiting on it (its priority)."""
    downstream: dict[str, set[str]] = {n: set() for n in upstream}
    for name, ups in upstream.items():
        for up in ups:
            downstream[up].add(name)
    memo: dict[str, float] = {}

    def tail(name: str) -> float:
        if name not in memo:
            memo[name] = times[name] + max((tail(d) for d in downstream[name]), default=0.0)
        return memo[name]

    return {n: tail(n) for n in upstream}


def critical_path(times: dict[str, float], upstream: dict[str, set[str]]) -> list[str]:
    tail = longest_to_end(times, upstream)
    downstream = {n: {d for d, ups in upstream.items() if n in ups} for n in upstream}
    path = [max((n for n in upstream if not upstream[n]), key=tail.get)]
    while downstream[path[-1]]:
        path.append(max(downstream[path[-1]], key=tail.get))
    return path


def makespan(times: dict[str, float], upstream: dict[str, set[str]], workers: int) -> float:
    """A list schedule on `workers` identical workers, longest path to the end first."""
    priority = longest_to_end(times, upstream)
    done_at: dict[str, float] = {}
    free = [0.0] * workers
    while len(done_at) < len(upstream):
        t = min(free)
        ready = [n for n in upstream if n not in done_at and all(u in done_at and done_at[u] <= t for u in upstream[n])]
        if not ready:  # wait for the next stage to finish
            later = [v for v in done_at.values() if v > t]
            free[free.index(t)] = min(later)
            continue
        name = max(ready, key=priority.get)
        w = free.index(t)
        done_at[name] = free[w] = t + times[name]
    return max(done_at.values())


def stack_kinds() -> dict[str, str]:
    import yaml

    stacks = yaml.safe_load((ROOT / "params.yaml").read_text())["vincent"]["stacks"]
    return {
        f"pretrain@{row}-{s}": "dae" if spec["kind"] == "ae" else "rbm" for row in ROWS for s, spec in stacks.items()
    }


def main() -> None:
    cpu_times = stage_times()
    upstream = table_dag()
    missing = sorted(n for n in upstream if n not in cpu_times)
    if missing:
        sys.exit(f"no measured time for {missing}: add them to a row's report or UNLISTED_S")
    kinds = stack_kinds()
    cases = {"table, CPU": cpu_times}
    cases["table, GPU (est.)"] = {n: gpu_time(n, s, kinds) for n, s in cpu_times.items()}
    search_gpu, search_cpu, search_up = search_dag()
    dags = {
        "table, CPU": upstream,
        "table, GPU (est.)": upstream,
        "search, CPU (est.)": search_up,
        "search, GPU": search_up,
    }
    cases |= {"search, CPU (est.)": search_cpu, "search, GPU": search_gpu}
    results = {}
    for case, times in cases.items():
        ups = dags[case]
        times = {n: times[n] for n in ups}
        path = critical_path(times, ups)
        results[case] = {
            "total_h": sum(times.values()) / 3600,
            "critical_h": sum(times[n] for n in path) / 3600,
            "path": path,
            "bound_by": max(path, key=times.get),
            "times": times,
            "makespan_h": {n: makespan(times, ups, n) / 3600 for n in WORKERS},
        }
    write(results)


def hours(h: float) -> str:
    return f"{h:.2f} h" if h >= 1 else f"{h * 60:.1f} min"


def write(results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = ROOT / "reports/scale"
    out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, prefix in zip(axes, ("table", "search"), strict=True):
        for case, r in results.items():
            if case.startswith(prefix):
                line = ax.plot(WORKERS, [r["makespan_h"][n] for n in WORKERS], "o-", label=case)[0]
                ax.axhline(r["critical_h"], ls=":", color=line.get_color(), lw=1)
        ax.set(
            xscale="log",
            yscale="log",
            xticks=WORKERS,
            xticklabels=WORKERS,
            xlabel="workers",
            ylabel="wall time (hours)",
            title=f"the {prefix} (dotted: critical path)",
        )
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "scale.png", dpi=110)
    lines = [
        "# Scale on paper: the table and the wide search on N workers",
        "",
        "Written by `python benchmarks/scale.py` from measured times (its docstring says which); nothing here",
        "ran on N machines. Wall time = a list schedule of the DAG's stages (the ready stage with the longest",
        "path to the end first); it can never beat the critical path or the total work / N.",
        "",
        "| case | total work | critical path | " + " | ".join(f"{n} worker{'s' * (n > 1)}" for n in WORKERS) + " |",
        "|---|---|---|" + "---|" * len(WORKERS),
    ]
    for case, r in results.items():
        cells = " | ".join(hours(r["makespan_h"][n]) for n in WORKERS)
        lines.append(f"| {case} | {hours(r['total_h'])} | {hours(r['critical_h'])} | {cells} |")
    lines += ["", "![wall time against workers](scale.png)", ""]
    for case, r in results.items():
        speedup = r["makespan_h"][1] / r["makespan_h"][16]
        chain = " -> ".join(f"{n} ({r['times'][n] / 60:.0f} min)" for n in r["path"])
        lines += [
            f"**{case}**: {speedup:.1f}x faster on 16 workers than on one; bounded by **{r['bound_by']}**"
            f" ({r['times'][r['bound_by']] / 60:.1f} min), on the critical path {chain}.",
            "",
        ]
    lines += [
        "What this leaves out: the time to start a stage (Python, imports, DVC's checks and `dvc commit`, about 10 s",
        "each), moving data to a worker without a shared mount (`dvc pull` of a row's arrays and models), a GPU",
        "worker shared by two stages, and stages grouped in lockstep on a GPU (the GPU times are one candidate at a",
        "time: a grouped stage is faster). The table's CPU times are one thread per stage on 2-core machines (an",
        "AVX-512 Xeon for basic and rot, an AVX2 EPYC for the rest), some beside other work.",
    ]
    (out / "scale.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:14]))


if __name__ == "__main__":
    main()
