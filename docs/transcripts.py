"""Every console transcript in the docs, rerun from its commands, so that none can drift from what the code prints.

    python docs/transcripts.py                 # rerun the cheap transcripts, rewrite their blocks in the docs
    python docs/transcripts.py --check         # rerun and compare, rewrite nothing: exit 1 naming each stale block
    python docs/transcripts.py gate stale      # only these (the expensive `smoke` only when named)
    python docs/transcripts.py --list          # each transcript: where it runs, how long, its commands
    python docs/transcripts.py --committed     # in a copy of HEAD: while edits in progress make the tree stale

A transcript lives in README.md or docs/*.md between two markers, and everything between them is written here:

    <!-- transcript: gate -->
    ```console
    $ python -m pipeline.check
    OK: ...
    ```
    <!-- /transcript -->

Where a transcript runs (`setup`):

- `checkout`: this working tree as it is (the committed reports and metrics, and any edit in progress;
  `--committed` runs every transcript in a copy of HEAD instead).
- `clone`: a copy of the tracked files in a temporary git repo, without data/ or models/: a fresh clone before
  `dvc pull`, whatever this checkout holds.
- `committed`: the same from the committed HEAD, whatever the working tree holds: the stale check, which lists
  every stage an edit in progress reaches (commit, then rerun the transcript, to show a change of its own output).
- `smoke`: a clone whose params.yaml is tests/smoke_params.yaml (tiny sizes; MNIST from $PIPELINE_DATA_MIRROR or
  ../shared/data), where `dvc repro` runs every stage and the result is committed as `master` before the commands
  shown. Minutes of CPU: it runs only when named (`python docs/transcripts.py smoke`), never in the tests.

Every command runs with one thread per process (OMP_NUM_THREADS=1, as the committed runs did); log timestamps
(`12:34:56 `) and the temporary folder's path are written as `HH:MM:SS` and `<clone>`.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(<!-- transcript: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /transcript -->)", re.S)
TIMESTAMP = re.compile(r"^\d\d:\d\d:\d\d ", re.M)
GIT = ["git", "-c", "user.email=docs@localhost", "-c", "user.name=docs", "-c", "init.defaultBranch=master"]


@dataclass(frozen=True)
class Step:
    command: str  # shown after "$ " and run with bash in the transcript's folder
    tail: int | None = None  # show only the output's last lines (after "..."); None: all of it


@dataclass(frozen=True)
class Transcript:
    name: str
    setup: str  # checkout | clone | committed | smoke
    steps: tuple[Step, ...]
    seconds: int  # about how long a rerun takes on a 2-core machine; the tests run those under 10 s in the fast set
    expensive: bool = False  # rerun only when named


TRANSCRIPTS = {
    t.name: t
    for t in [
        Transcript("gate", "checkout", (Step("python -m pipeline.check"),), 2),
        Transcript("stale", "committed", (Step("python -m pipeline.check --stale"),), 25),
        Transcript(
            "metrics", "checkout", (Step("dvc metrics show metrics/vincent"), Step("dvc metrics show metrics/zoo")), 6
        ),
        Transcript("dry-run", "clone", (Step("python -m pipeline.repro --dry report@rect"),), 15),
        Transcript(
            "smoke",
            "smoke",
            (
                Step("dvc metrics show"),
                Step("dvc exp run -n ft-lr-0.3 -S 'vincent.finetune.lr=[0.3]'", tail=2),
                Step("dvc metrics diff master"),
                Step("dvc exp show --md --drop '.*' --keep 'Experiment|.*:(DBN-1|SdA-3)|vincent.finetune.lr'"),
            ),
            600,
            expensive=True,
        ),
    ]
}


# What the stages write, as path prefixes: dvc.lock and dvc.yaml's outs (metrics, results, plots, reports). A copy
# with outputs=False has none of them, as a project that has never run.
OUTPUTS = ("dvc.lock", "metrics/", "results/", "plots/", "reports/figures/", "reports/vincent", "reports/zoo")


def copy_tracked(dest: Path, *, outputs: bool, committed: bool = False, track: bool = True) -> Path:
    """This checkout's files in `dest` (made where missing), a git repo with one commit: the tracked and the
    untracked files git does not ignore, or with committed=True the files of HEAD (what CI sees), whatever the
    working tree holds.

    outputs=False leaves out what the stages write (OUTPUTS). track=False makes the commit an empty one and leaves
    every file untracked (the tests' copies: an edit a test makes to params.yaml or the code does not mark the
    stages' `git.commit` tag dirty)."""
    dest.mkdir(parents=True, exist_ok=True)
    if committed:
        leave_out = [] if outputs else ["--", ".", *(f":(exclude){prefix}*" for prefix in OUTPUTS)]
        archive = subprocess.run(
            ["git", "archive", "HEAD", *leave_out], cwd=ROOT, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    else:
        listed = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.splitlines()
        for rel in listed:
            if (ROOT / rel).is_file() and (outputs or not rel.startswith(OUTPUTS)):
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / rel, dest / rel)
    subprocess.run([*GIT, "init", "-q"], cwd=dest, check=True)
    if track:
        subprocess.run([*GIT, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*GIT, "commit", "-q", "--allow-empty", "-m", "docs transcript"], cwd=dest, check=True)
    return dest


def environment(folder: Path) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PIPELINE_OFFLINE="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # `python` is this interpreter
    if folder != ROOT:  # a clone logs to its own MLflow store
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'mlflow.db'}"
    return env


def shell(command: str, folder: Path) -> tuple[int, str]:
    done = subprocess.run(
        ["bash", "-c", command], cwd=folder, env=environment(folder), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    return done.returncode, done.stdout.decode()


def smoke_project(dest: Path, committed: bool) -> Path:
    """A clone on the smoke profile, every stage run by `dvc repro` and committed as `master`."""
    mirror = next(
        (
            Path(m).resolve()
            for m in (os.environ.get("PIPELINE_DATA_MIRROR"), ROOT.parent / "shared" / "data")
            if m and (Path(m) / "MNIST" / "raw").is_dir()
        ),
        None,
    )
    if mirror is None:
        sys.exit("smoke: no MNIST mirror (set PIPELINE_DATA_MIRROR to a folder holding MNIST/raw/*.gz)")
    copy_tracked(dest, outputs=False, committed=committed)
    params = yaml.safe_load((ROOT / "tests" / "smoke_params.yaml").read_text())
    params["data"]["mirrors"] = [str(mirror)]
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    rc, out = shell("dvc repro", dest)
    if rc:
        sys.exit(f"smoke setup: `dvc repro` failed (exit {rc}):\n{out[-4000:]}")
    subprocess.run([*GIT, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "smoke run"], cwd=dest, check=True)
    return dest


def run(transcript: Transcript, committed: bool = False) -> str:
    """The transcript's block: each command after "$ " and what it printed (committed: in a copy of HEAD)."""
    with tempfile.TemporaryDirectory(prefix="transcript-") as tmp:
        if transcript.setup == "smoke":
            folder = smoke_project(Path(tmp) / "clone", committed)
        elif transcript.setup in ("clone", "committed") or committed:
            folder = copy_tracked(
                Path(tmp) / "clone", outputs=True, committed=committed or transcript.setup == "committed"
            )
        else:
            folder = ROOT
        lines = []
        for step in transcript.steps:
            rc, out = shell(step.command, folder)
            if rc:
                sys.exit(f"{transcript.name}: `{step.command}` exited {rc}:\n{out[-4000:]}")
            out = TIMESTAMP.sub("HH:MM:SS ", out.replace(str(folder), "<clone>"))
            shown = [line.rstrip() for line in out.rstrip("\n").splitlines()]
            if step.tail is not None and len(shown) > step.tail:
                shown = ["...", *shown[-step.tail :]]
            lines += [f"$ {step.command}", *shown]
    return "```console\n" + "\n".join(lines) + "\n```\n"


def blocks() -> dict[str, list[Path]]:
    """Each transcript name -> the docs that hold a block of it."""
    found: dict[str, list[Path]] = {}
    for doc in DOCS:
        for match in BLOCK.finditer(doc.read_text()):
            found.setdefault(match["name"], []).append(doc)
    return found


def rewrite(doc: Path, name: str, body: str, *, check: bool) -> bool:
    """Put `body` in `name`'s blocks of `doc` (check: only compare). True where a block was stale."""
    text = doc.read_text()
    stale = False
    for match in BLOCK.finditer(text):
        if match["name"] == name and match["body"] != body:
            stale = True
            rel = doc.relative_to(ROOT)
            diff = difflib.unified_diff(
                match["body"].splitlines(), body.splitlines(), f"{rel} (in the doc)", f"{name} (rerun)", lineterm=""
            )
            print(f"{rel}: transcript {name} is stale" + ("" if not check else ":\n" + "\n".join(diff)))
    if stale and not check:
        new = BLOCK.sub(lambda m: m.group(1) + body + m.group(4) if m["name"] == name else m.group(0), text)
        doc.write_text(new)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "names", nargs="*", help=f"transcripts to rerun (default: all but the expensive): {list(TRANSCRIPTS)}"
    )
    parser.add_argument("--check", action="store_true", help="compare with the docs, rewrite nothing; exit 1 if stale")
    parser.add_argument("--list", action="store_true", help="list the transcripts and exit")
    parser.add_argument(
        "--committed", action="store_true", help="run in a copy of HEAD, not the working tree (edits in progress)"
    )
    args = parser.parse_args(argv)
    found = blocks()
    if args.list:
        for t in TRANSCRIPTS.values():
            where = ", ".join(str(d.relative_to(ROOT)) for d in found.get(t.name, [])) or "no doc"
            flag = " (expensive: only when named)" if t.expensive else ""
            print(f"{t.name}: {t.setup}, ~{t.seconds} s{flag}, in {where}: " + "; ".join(s.command for s in t.steps))
        return 0
    unknown = sorted(set(args.names) - set(TRANSCRIPTS)) + sorted(set(found) - set(TRANSCRIPTS))
    if unknown:
        print(f"unknown transcripts (in the arguments or in a doc's marker): {unknown}; known: {list(TRANSCRIPTS)}")
        return 2
    names = args.names or [n for n, t in TRANSCRIPTS.items() if not t.expensive]
    missing = [n for n in names if n not in found]
    if missing:
        print(
            f"no block in README.md or docs/*.md for {missing} (add `<!-- transcript: NAME -->` ... `<!-- /transcript -->`)"
        )
        return 1
    stale = []
    for name in names:
        t0 = time.monotonic()
        body = run(TRANSCRIPTS[name], args.committed)
        if any([rewrite(doc, name, body, check=args.check) for doc in found[name]]):
            stale.append(name)
        print(f"{name}: {'stale' if name in stale else 'current'} ({time.monotonic() - t0:.1f} s)", file=sys.stderr)
    if args.check and stale:
        print(f"stale transcripts: {stale}; rewrite them with `python docs/transcripts.py {' '.join(stale)}`")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
