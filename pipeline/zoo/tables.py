"""The zoo's table: one row per variant (and per PCA comparison) from the variants' metrics files."""

from __future__ import annotations

import hashlib
import json

import pandas as pd

from pipeline.core import paths
from pipeline.data.arrays import DataFileError
from pipeline.params import ZooParams

MARKDOWN, CSV = "reports/zoo.md", "reports/zoo.csv"
FIGURES = {
    "codes": "reports/figures/zoo_codes_2d.png",
    "reconstructions": "reports/figures/zoo_reconstructions.png",
    "denoising": "reports/figures/zoo_denoising.png",
    "curves": "reports/figures/zoo_loss_curves.png",
    "sparsity": "reports/figures/zoo_sparsity.png",
    "vae": "reports/figures/zoo_vae.png",
}


def load_metrics(z: ZooParams) -> dict[str, dict]:
    out = {}
    for name in z.variants:
        path = paths.zoo_results(name)
        if not path.is_file():
            stage = "zoo_layer" if name in z.layers else "zoo_train"
            raise DataFileError(f"{path} not found: run `dvc repro {stage}@{name}`")
        out[name] = json.loads(path.read_text())
    return out


def table(z: ZooParams, metrics: dict[str, dict]) -> pd.DataFrame:
    """One row per variant (+ one per PCA comparison)."""
    rows = []
    for name, m in metrics.items():
        row = {
            "variant": name,
            "title": m["title"],
            "kind": m["kind"],
            "code_dim": m["code_dim"],
            "parameters": m["parameters"],
            "epochs": m["epochs"],
            "test_input": m["test_input"],
            "test_mse": m["test"]["mse"],
            "test_bce": m["test"]["bce"],
            "clean_mse": m["reconstruction"]["clean"]["mse"],
            **{f"mse_{n}": m["reconstruction"][n]["mse"] for n in z.eval_noises},
            "linear_probe_acc": m["probe"]["linear_probe_acc"],
            "knn_acc": m["probe"]["knn_acc"],
            **m["sparsity"],
            "jacobian_fro2": m["jacobian_fro2"],
        }
        if "pca" in m:
            p = m["pca"]
            row |= {
                "pca_angle_max_deg": p["decoder_angles"]["max_deg"],
                "pca_angle_mean_deg": p["decoder_angles"]["mean_deg"],
            }
        rows.append(row)
        if "pca" in m:
            rows.append(
                {
                    "variant": f"pca_{name}",
                    "title": f"PCA, {p['k']} components",
                    "kind": "pca",
                    "code_dim": p["k"],
                    "test_input": "clean",
                    "test_mse": p["test"]["mse"],
                    "test_bce": p["test"]["bce"],
                    "clean_mse": p["test"]["mse"],
                    **{f"mse_{n}": p["reconstruction"][n]["mse"] for n in z.eval_noises},
                    "linear_probe_acc": p["probe"]["linear_probe_acc"],
                    "knn_acc": p["probe"]["knn_acc"],
                }
            )
    return pd.DataFrame(rows)


def params_hash(z: ZooParams) -> str:
    return hashlib.sha256(json.dumps(z.model_dump(exclude={"experiment"}), sort_keys=True).encode()).hexdigest()[:12]


def fmt(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}g}" if abs(x) < 1000 else f"{x:,.0f}"


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def tour_pairs(z: ZooParams) -> list[tuple[str, str]]:
    """(tour variant, our variant) for every variant with `tour_of`, in params order."""
    return [(name, spec.tour_of) for name, spec in z.variants.items() if spec.tour_of]


def _setting(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def spec_changes(z: ZooParams, tour: str, ours: str) -> str:
    """What our variant sets differently from the tour's, read from the params (e.g. "loss cross_entropy, not mse")."""
    a, b = z.variants[tour], z.variants[ours]
    keys = sorted(set(a.model_fields_set | b.model_fields_set) - {"title", "tour_of", "reference"})
    differ = [k for k in keys if getattr(a, k) != getattr(b, k)]
    changed = [f"{k} {_setting(getattr(b, k))}, not {_setting(getattr(a, k))}" for k in differ]
    return "; ".join(changed) or "no setting"


def tour_table(z: ZooParams, metrics: dict[str, dict]) -> pd.DataFrame:
    """One row per tour variant beside our variant: test MSE and linear-probe accuracy of each."""
    rows = []
    for tour, ours in tour_pairs(z):
        t, o = metrics[tour], metrics[ours]
        rows.append(
            {
                "tour_variant": t["title"],
                "our_variant": o["title"],
                "tour_test_mse": t["test"]["mse"],
                "our_test_mse": o["test"]["mse"],
                "tour_linear_probe_acc": t["probe"]["linear_probe_acc"],
                "our_linear_probe_acc": o["probe"]["linear_probe_acc"],
            }
        )
    return pd.DataFrame(rows)


def tour_sentences(z: ZooParams, metrics: dict[str, dict]) -> list[str]:
    """One measured sentence per (tour, ours) pair: what our settings buy over the tour's."""
    out = []
    for tour, ours in tour_pairs(z):
        t, o = metrics[tour], metrics[ours]
        mse_t, mse_o = t["test"]["mse"], o["test"]["mse"]
        acc_t, acc_o = t["probe"]["linear_probe_acc"], o["probe"]["linear_probe_acc"]
        if mse_o == mse_t:
            mse = f"leaves test MSE per pixel at {fmt(mse_o)}"
        else:
            way = "lowers" if mse_o < mse_t else "raises"
            mse = f"{way} test MSE per pixel from {fmt(mse_t)} to {fmt(mse_o)}"
            mse += f" ({pct(abs(mse_o / mse_t - 1))})" if mse_t > 0 else ""
        points = 100 * (acc_o - acc_t)
        out.append(
            f"{o['title']} against the tour's {t['title']} ({spec_changes(z, tour, ours)}): ours {mse} and "
            f"moves linear-probe accuracy from {pct(acc_t)} to {pct(acc_o)} ({points:+.1f} points)."
        )
    return out
