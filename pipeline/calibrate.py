"""Calibrate a generated row's recipe unknowns on SVM_rbf validation error (never test, never a deep model).

    python -m pipeline.calibrate --dataset convex --set nonconvex_p=0.05 --set count_start=1 [--note why]

Generates train + valid only (a small test split is made and ignored), prints the row's leak statistics
(`../shared/reference/FIDELITY.md` section 4) and fits the `evaluate_svm` stage's rbf grid (vincent.svm.rbf
in params.yaml, gamma in multiples of 'scale' of the training pixels) with the project's own SVM code. Each
variant's line is appended to reports/calibration/<dataset>.csv; reports/calibration/<dataset>.md is the
hand-written summary. Recipe fields take `field=value` (ints, floats, booleans and strings parsed as YAML).
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.cli import exits_on_bad_input

CSV_FIELDS = (
    "time",
    "dataset",
    "recipe",
    "train",
    "valid",
    "seed",
    "valid_error",
    "best",
    "grid",
    "leaks",
    "note",
    "test",
    "test_error",
)


def parse_sets(items: list[str]) -> dict[str, Any]:
    """['a=1', 'b=x'] -> {'a': 1, 'b': 'x'} (values parsed as YAML scalars); a StageError for an item without `=`."""
    import yaml

    from pipeline.core.errors import StageError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise StageError(f"--set {item!r}: expected field=value, e.g. --set min_side=3")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise StageError(
                f"--set {item!r}: the value is not a YAML scalar (an int, float, boolean or string)"
            ) from None
    return out


def check_dataset(name: str) -> None:
    """`--dataset` must name a generated row (a key of pipeline.data.benchmarks.REGISTRY); else a StageError."""
    from pipeline.core.errors import StageError
    from pipeline.data.benchmarks import DATASETS

    if name not in DATASETS:
        why = "MNIST itself, not generated" if name in ("basic", "full") else "not a generated row"
        raise StageError(f"--dataset {name!r}: {why}; expected one of {list(DATASETS)}")


def check_recipe(name: str, recipe: dict[str, Any], where: str) -> None:
    """Every field of `recipe` is a field of the row's recipe dataclass, with a value of its type; else a StageError
    naming `where` the field was given (`--set`, or the params key) and the recipe's fields."""
    import dataclasses

    from pipeline.core.errors import StageError
    from pipeline.data.benchmarks import REGISTRY

    cls = REGISTRY[name][1]
    types = {f.name: f.type if isinstance(f.type, str) else f.type.__name__ for f in dataclasses.fields(cls)}
    accepts = {"bool": (bool,), "int": (int,), "float": (int, float), "str": (str,)}
    for field, value in recipe.items():
        if field not in types:
            raise StageError(f"{where} {field}: {cls.__name__} has no field {field!r}; its fields: {', '.join(types)}")
        kinds = accepts.get(types[field], (object,))
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise StageError(
                f"{where} {field}={value!r}: {cls.__name__}.{field} expects {types[field]}, got {type(value).__name__}"
            )


def check_sizes(args: argparse.Namespace) -> None:
    """--train and --valid must be positive, --test positive or 0 (none); else a StageError naming the flag."""
    from pipeline.core.errors import StageError

    for flag, value, least in (("--train", args.train, 1), ("--valid", args.valid, 1), ("--test", args.test, 0)):
        if value is not None and value < least:
            expected = "a positive number of examples" if least else "0 (no test split) or a positive number"
            raise StageError(f"{flag} {value}: expected {expected}")


def convex_leaks(arrays: dict) -> dict[str, float]:
    """On-pixel count per class; a logistic regression on (count, count^2) fit on train, error on valid;
    the share of non-convex images in more than one 8-connected piece; whether pixels are pure 0/255."""
    from scipy import ndimage
    from sklearn.linear_model import LogisticRegression

    (xt, yt), (xv, yv) = arrays["train"], arrays["valid"]
    on_t, on_v = (xt > 127).sum(1).astype(np.float64), (xv > 127).sum(1).astype(np.float64)

    def feats(on: np.ndarray) -> np.ndarray:
        z = (on - on_t.mean()) / on_t.std()
        return np.stack([z, z * z], 1)

    clf = LogisticRegression().fit(feats(on_t), yt)
    pieces = [ndimage.label(img.reshape(28, 28) > 127, np.ones((3, 3)))[1] for img in xt[yt == 0]]
    return {
        "on_mean_convex": round(float(on_t[yt == 1].mean()), 1),
        "on_mean_nonconvex": round(float(on_t[yt == 0].mean()), 1),
        "on_std_convex": round(float(on_t[yt == 1].std()), 1),
        "on_std_nonconvex": round(float(on_t[yt == 0].std()), 1),
        "count_logreg_valid_error": round(float((clf.predict(feats(on_v)) != yv).mean()), 4),
        "nonconvex_disconnected": round(float(np.mean(np.array(pieces) > 1)), 4),
        "pure_binary": bool(np.isin(xt, (0, 255)).all()),
    }


def background_leaks(name: str, arrays: dict, record: dict, mnist_x: np.ndarray, recipe: Any) -> dict[str, float]:
    """Background patch mean and std (train), and the share of stroke pixels (digit > 0.5) whose background
    is above 0.8 (the bright backgrounds that hide a stroke)."""
    from pipeline.data.benchmarks.common import SIDE
    from pipeline.data.benchmarks.images import grays, stretch
    from pipeline.data.benchmarks.mnist_variants import rotate

    info = record["train"]
    bg = np.empty((len(info["image_id"]), SIDE * SIDE))
    for i, img in enumerate(grays(recipe.patch_scale)):
        rows = np.flatnonzero(info["image_id"] == i)
        width = img.shape[1] - SIDE + 1
        views = np.lib.stride_tricks.sliding_window_view(img, (SIDE, SIDE))
        flat = info["window"][rows]
        bg[rows] = views[flat // width, flat % width].reshape(rows.size, -1)
    bg = stretch(bg, recipe.patch_contrast)
    digit = mnist_x[info["source_index"]].astype(np.float64) / 255.0
    if "angle" in info:
        digit = rotate(digit, info["angle"], recipe)
    stroke = digit > 0.5
    return {
        "bg_mean": round(float(bg.mean()), 4),
        "bg_std_within_patch": round(float(bg.std(1).mean()), 4),
        "bg_std_all": round(float(bg.std()), 4),
        "stroke_bg_above_0.8": round(float((bg[stroke] > 0.8).mean()), 4),
        "pixel_mean": round(float(arrays["train"][0].mean() / 255.0), 4),
    }


def rbf_grid(x_train: np.ndarray, grid: dict[str, list]) -> dict[str, list]:
    """The evaluate_svm stage's grid: gamma = factor / (pixels x variance of the training pixels)."""
    import torch

    x = torch.from_numpy(x_train).float().div_(255.0)
    scale = 1.0 / (x.shape[1] * float(x.double().var()))
    return {"C": list(grid["C"]), "gamma": [float(f"{f * scale:.4g}") for f in grid["gamma_scale"]]}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from pipeline import params as params_mod
    from pipeline.data import benchmarks
    from pipeline.data.benchmarks.common import Sizes
    from pipeline.evaluation.svm import fit_svm_and_test, select_svm

    check_dataset(args.dataset)
    check_sizes(args)
    sets = parse_sets(args.set)
    params = params_mod.load_params(args.params)
    spec = params.benchmarks.datasets.get(args.dataset)  # a row not listed yet: its recipe's defaults
    listed = spec.recipe if spec is not None and not args.defaults else {}
    check_recipe(args.dataset, listed, f"benchmarks.datasets.{args.dataset}.recipe:")
    check_recipe(args.dataset, sets, "--set")
    recipe = {**listed, **sets}
    sizes = Sizes(args.train, args.valid, args.test or 2)
    needs_mnist = benchmarks.REGISTRY[args.dataset][2]
    mnist_x = mnist_y = None
    if needs_mnist:
        from pipeline.data import mnist

        mnist_x, mnist_y = mnist.load_raw("mnist", params.data.root, params.data.mirrors)
    start = time.perf_counter()
    record: dict = {}
    arrays = benchmarks.generate(args.dataset, sizes, params.seed, mnist_x, mnist_y, record, **recipe)
    gen_s = time.perf_counter() - start
    if args.dataset == "convex":
        leaks = convex_leaks(arrays)
    elif args.dataset in ("bg-img", "rot-bg-img"):
        leaks = background_leaks(args.dataset, arrays, record, mnist_x, benchmarks.make_recipe(args.dataset, **recipe))
    else:
        leaks = {}
    print(f"{args.dataset} {recipe}: generated in {gen_s:.0f} s; leaks {leaks}", flush=True)
    (xt, yt), (xv, yv) = arrays["train"], arrays["valid"]
    grid = rbf_grid(xt, params.vincent.svm.rbf.model_dump())
    best, table = select_svm("rbf", grid, xt / 255.0, yt, xv / 255.0, yv, n_jobs=1)
    err = min(row["valid_error"] for row in table)
    row = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "dataset": args.dataset,
        "recipe": repr(recipe),
        "train": args.train,
        "valid": args.valid,
        "seed": params.seed,
        "valid_error": round(100 * err, 2),
        "best": repr(best),
        "grid": " ".join(f"{r['C']:g}/{r['gamma']:.4g}:{100 * r['valid_error']:.2f}" for r in table),
        "leaks": repr(leaks),
        "note": args.note,
        "test": args.test,
        "test_error": "",
    }
    print(
        f"{args.dataset} {recipe}: SVM_rbf validation error {row['valid_error']:.2f}% (best {best}; "
        f"{time.perf_counter() - start:.0f} s)\n  grid {row['grid']}",
        flush=True,
    )
    if args.test:  # once, after the choice: refit the best point on train + valid, as the evaluate_svm stage
        xte, yte = arrays["test"]
        x_tv, y_tv = np.concatenate([xt, xv]) / 255.0, np.concatenate([yt, yv])
        row["test_error"] = round(100 * fit_svm_and_test("rbf", best, x_tv, y_tv, xte / 255.0, yte)[0], 2)
        print(f"{args.dataset}: SVM_rbf TEST error {row['test_error']:.2f}% on {args.test} (after the choice)")
    if not args.dry_run:
        out = Path(args.out) / f"{args.dataset}.csv"
        out.parent.mkdir(parents=True, exist_ok=True)
        new = not out.exists()
        with out.open("a", newline="") as f:
            writer = csv.DictWriter(f, CSV_FIELDS)
            if new:
                writer.writeheader()
            writer.writerow(row)
    return row


@exits_on_bad_input("calibrate")
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="a generated row: convex, bg-img, rot-bg-img, rect-img...")
    parser.add_argument("--set", action="append", default=[], help="recipe field=value (repeatable)")
    parser.add_argument("--defaults", action="store_true", help="start from the recipe defaults, not params.yaml's")
    parser.add_argument("--train", type=int, default=None, help="training examples (default: published size)")
    parser.add_argument("--valid", type=int, default=None, help="validation examples (default: published size)")
    parser.add_argument("--test", type=int, default=0, help="test examples: measure test error ONCE, after choosing")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="reports/calibration")
    parser.add_argument("--note", default="")
    parser.add_argument("--dry-run", action="store_true", help="print only; append nothing")
    args = parser.parse_args(argv)
    from pipeline.data.benchmarks.common import PUBLISHED_SIZES

    check_dataset(args.dataset)  # before its published sizes are looked up
    sizes = PUBLISHED_SIZES[args.dataset]
    args.train = sizes.train if args.train is None else args.train
    args.valid = sizes.valid if args.valid is None else args.valid
    from pipeline.core.cli import set_threads

    set_threads()
    run(args)


if __name__ == "__main__":
    main()
