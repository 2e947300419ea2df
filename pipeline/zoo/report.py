"""The zoo report: the side-by-side table, the combined figures, and sentences generated from the numbers.

`ZooReport` loads what the figures need once (test digits, noisy copies, trained models, metrics);
each `*_figure` method returns a Figure and stores the paragraph that describes it, measured.
`markdown` puts the document together; its sections beside PCA and the tour's models are in `comparisons`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy.stats import norm

from pipeline.common.seeding import make_generator
from pipeline.core import paths
from pipeline.data.arrays import load_split
from pipeline.params import Params
from pipeline.zoo import figures as zf
from pipeline.zoo import metrics as zm
from pipeline.zoo import registry as zoo
from pipeline.zoo.comparisons import layers_section, pca_section, tour_section
from pipeline.zoo.evaluate import noisy_test, probe_subsample
from pipeline.zoo.tables import FIGURES, fmt, load_metrics, pct


class ZooReport:
    """Loads what the figures need once: test digits, noisy copies, models."""

    def __init__(self, params: Params):
        self.params, self.z = params, params.zoo
        folder = paths.prepared(self.z.dataset)
        self.train, self.valid, self.test = (load_split(folder, s) for s in ("train", "valid", "test"))
        self.metrics = load_metrics(self.z)
        self.models = {n: zoo.load(s, paths.zoo_model(n)) for n, s in self.z.variants.items()}
        self.titles = {n: zoo.title(self.z, n) for n in self.z.variants}
        noises = {zoo.train_noise(s) for s in self.z.variants.values()} - {None}
        self.noisy = {n: noisy_test(self.z, n, self.test.x)[0] for n in sorted(noises)}
        self.text: dict[str, str] = {}

    def codes_figure(self):
        two_d = [n for n, s in self.z.variants.items() if zoo.code_dim(s) == 2]
        panels = [
            (
                self.titles[n],
                zoo.codes(self.models[n], self.test.x).numpy(),
                ("z1 (posterior mean)", "z2") if self.z.variants[n].kind == "vae" else ("code 1", "code 2"),
            )
            for n in two_d
        ]
        pca = zm.fit_pca(self.train.x, 2, self.params.seed)
        pca_codes = zm.pca_codes(pca, self.test.x)
        panels.append(("PCA, 2 components", pca_codes.numpy(), ("PC 1", "PC 2")))
        pca_probe = self._pca2_probe(pca)
        parts = [
            f"{self.titles[n]} {pct(self.metrics[n]['probe']['linear_probe_acc'])} "
            f"(k-NN {pct(self.metrics[n]['probe']['knn_acc'])})"
            for n in two_d
        ]
        parts.append(f"PCA {pct(pca_probe['linear_probe_acc'])} (k-NN {pct(pca_probe['knn_acc'])})")
        self.text["codes"] = (
            f"Each panel places the {len(self.test):,} test digits at their 2-D code. How well the digits separate, measured: "
            f"linear-probe accuracy on the 2-D codes is {', '.join(parts)}."
        )
        return zf.codes_2d(panels, self.test.y.numpy())

    def _pca2_probe(self, pca) -> dict:
        train, valid = self.train, self.valid
        idx = probe_subsample(len(train), self.z.probe_train, self.params.seed, "pca2")
        codes = {
            "train": zm.pca_codes(pca, train.x[idx]),
            "valid": zm.pca_codes(pca, valid.x),
            "test": zm.pca_codes(pca, self.test.x),
        }
        labels = {"train": train.y[idx], "valid": valid.y, "test": self.test.y}
        return zm.probes(codes, labels, self.z.logreg_C, self.z.knn_k)

    def reconstructions_figure(self):
        n = self.z.examples
        x = self.test.x[:n]
        rows = [x.numpy()] + [zoo.reconstruct(m, x).numpy() for m in self.models.values()]
        order = sorted(self.metrics, key=lambda v: self.metrics[v]["reconstruction"]["clean"]["mse"])
        ranking = ", ".join(f"{self.titles[v]} {fmt(self.metrics[v]['reconstruction']['clean']['mse'])}" for v in order)
        self.text["reconstructions"] = (
            f"The first {n} test digits (top row) and each variant's reconstruction of the clean digits. "
            f"Test MSE per pixel on clean digits, best first: {ranking}."
        )
        return zf.image_rows(rows, ["original", *self.titles.values()], "Test digits and their reconstructions")

    def denoising_figure(self):
        n, clean = self.z.examples, self.test.x[: self.z.examples]
        rows, labels, sentences = [clean.numpy()], ["clean"], []
        for noise, x in self.noisy.items():
            rows.append(x[:n].numpy())
            labels.append(noise.replace("-", " "))
            for name, spec in self.z.variants.items():
                if zoo.train_noise(spec) != noise:
                    continue
                rows.append(zoo.reconstruct(self.models[name], x[:n]).numpy())
                labels.append(f"{self.titles[name]}")
                r = self.metrics[name]["reconstruction"][noise]
                sentence = (
                    f"on {noise} test digits (MSE {fmt(r['input_mse'])} from the clean ones), "
                    f"{self.titles[name]} outputs MSE {fmt(r['mse'])}"
                )
                if spec.reference and noise in self.metrics[spec.reference]["reconstruction"]:
                    ref = spec.reference
                    rows.append(zoo.reconstruct(self.models[ref], x[:n]).numpy())
                    labels.append(f"{self.titles[ref]}")
                    sentence += (
                        f" against {fmt(self.metrics[ref]['reconstruction'][noise]['mse'])} for "
                        f"{self.titles[ref]}, the same net trained on clean digits"
                    )
                sentences.append(sentence)
        if not sentences:
            self.text["denoising"] = "No denoising variant (noise_level > 0) in zoo.variants."
            return zf.placeholder("no denoising variant in zoo.variants")
        self.text["denoising"] = (
            "Rows: clean test digits, the fixed corrupted copy of the `corrupt` stage, then the output of the "
            f"denoising variant and of its reference. Measured against the clean digits: {'; '.join(sentences)}."
        )
        return zf.image_rows(rows, labels, "Clean, noisy and denoised test digits")

    def curves_figure(self):
        histories = {self.titles[n]: m["history"] for n, m in self.metrics.items()}
        still, gaps = [], []
        for name, m in self.metrics.items():
            valid = m["history"].get("valid_loss", [])
            if len(valid) >= 2 and valid[-1] < valid[-2] * (1 - 0.005):
                still.append(f"{self.titles[name]} ({pct(1 - valid[-1] / valid[-2])})")
            if valid:
                gaps.append((valid[-1] / m["history"]["train_loss"][-1] - 1, self.titles[name]))
        text = "Each variant's own objective per image (penalties included), train vs validation. "
        if still:
            text += f"Validation loss still fell by more than 0.5% over the last epoch for {', '.join(still)}: these would gain from more epochs. "
        else:
            text += "No variant's validation loss fell by more than 0.5% over its last epoch. "
        if gaps and max(gaps)[0] > 0:
            gap, who = max(gaps)
            text += f"The largest final gap is {who}'s: validation loss {pct(gap)} above training."
        elif gaps:
            text += (
                "Every final validation loss is at or below the training loss (the training loss is averaged "
                "over the epoch while the weights improve and includes the training noise)."
            )
        self.text["curves"] = text
        return zf.loss_curves(histories)

    def sparsity_figure(self):
        pairs, sentences = [], []
        for name, spec in self.z.variants.items():
            if not spec.reference:
                continue
            ref = spec.reference
            h = zoo.hidden(self.models[name], self.test.x).abs().flatten().numpy()
            h_ref = zoo.hidden(self.models[ref], self.test.x).abs().flatten().numpy()
            pairs.append((self.titles[name], h, self.titles[ref], h_ref))
            s, s_ref = self.metrics[name]["sparsity"], self.metrics[ref]["sparsity"]
            sentence = (
                f"{self.titles[name]} has mean activation {fmt(s['mean_activation'])} vs "
                f"{fmt(s_ref['mean_activation'])} for {self.titles[ref]}, and {pct(s['near_zero_fraction'])} "
                f"of activations near zero vs {pct(s_ref['near_zero_fraction'])}"
            )
            j, j_ref = self.metrics[name]["jacobian_fro2"], self.metrics[ref]["jacobian_fro2"]
            if spec.contractive and j is not None and j_ref is not None:
                sentence += f"; its Jacobian norm ||dh/dx||_F^2 is {fmt(j)} vs {fmt(j_ref)}"
            sentences.append(sentence)
        basic = next((n for n in self.z.variants if n == "basic"), None)
        self.text["sparsity"] = (
            f"Histograms of |activation| of the first hidden layer on the test digits (log counts; dotted line: the "
            f"near-zero threshold {self.z.near_zero:g}). " + ("; ".join(sentences) + "." if sentences else "")
        )
        if basic:
            b = self.metrics[basic]["sparsity"]
            self.text["sparsity"] += (
                f" For scale, the basic 2-unit code has mean activation {fmt(b['mean_activation'])} "
                f"and {pct(b['near_zero_fraction'])} near zero."
            )
        return zf.sparsity_histograms(pairs, self.z.near_zero)

    def vae_figure(self):
        name = next((n for n, s in self.z.variants.items() if s.kind == "vae"), None)
        if name is None:
            self.text["vae"] = "No VAE in zoo.variants."
            return zf.placeholder("no VAE in zoo.variants")
        model, g = self.models[name], self.z.manifold_grid
        grid = norm.ppf(np.linspace(0.05, 0.95, g))
        manifold = None
        if model.config.latent_dim == 2:
            z1, z2 = np.meshgrid(grid, grid[::-1])  # top row: highest z2
            with torch.no_grad():
                manifold = model.decode(
                    torch.tensor(np.stack([z1.ravel(), z2.ravel()], 1), dtype=torch.float32)
                ).numpy()
        samples = model.sample(64, make_generator(self.params.seed, "zoo-vae-samples")).numpy()
        h = self.metrics[name]["history"]
        text = f"Left: the decoder applied to a {g} x {g} grid of latent points at Gaussian quantiles 5%...95%. "
        if manifold is not None:
            near, far = manifold_smoothness(manifold, g)
            text += (
                f"Grid neighbours decode to images {fmt(near)} apart (mean squared pixel difference), against "
                f"{fmt(far)} on average over all pairs of grid points. "
            )
        self.text["vae"] = text + (
            f"Right: 64 images decoded from z ~ N(0, I). At the last epoch the validation loss (negative ELBO) is "
            f"{fmt(h['valid_loss'][-1])} nats per image; of the training loss, {fmt(h['reconstruction'][-1])} is "
            f"reconstruction and {fmt(h['kl'][-1])} the KL term."
        )
        return zf.vae_figure(manifold, grid, samples, f"{self.titles[name]}: latent manifold and samples")


def manifold_smoothness(images: np.ndarray, g: int) -> tuple[float, float]:
    """Mean squared pixel difference between grid neighbours, and between all pairs of grid images."""
    grid = images.reshape(g, g, -1)
    near = np.concatenate(
        [(grid[1:] - grid[:-1]).reshape(-1, grid.shape[-1]), (grid[:, 1:] - grid[:, :-1]).reshape(-1, grid.shape[-1])]
    )
    flat = images.astype(np.float64)
    sq = (flat**2).sum(1)
    pair = (sq[:, None] + sq[None, :] - 2 * flat @ flat.T) / flat.shape[1]
    n = len(flat)
    return float((near**2).mean()), float(pair.sum() / (n * (n - 1)))


def markdown(report: ZooReport, frame: pd.DataFrame, params_hash: str) -> str:
    z = report.z
    shown = frame[
        [
            "variant",
            "code_dim",
            "epochs",
            "test_input",
            "test_mse",
            "test_bce",
            "clean_mse",
            *[f"mse_{n}" for n in z.eval_noises],
            "linear_probe_acc",
            "knn_acc",
            "mean_activation",
            "near_zero_fraction",
        ]
    ]
    best = frame.loc[frame["linear_probe_acc"].idxmax()]
    layers = (
        ", and every layer of `zoo.layers` with the table's own pretraining step (section below)" if z.layers else ""
    )
    lines = [
        "# The autoencoder zoo",
        "",
        f"Every variant of `zoo.variants` trained on `{z.dataset}` ({len(report.train.x):,} training digits) with Adam "
        f"(batch {z.batch_size}){layers}, scored on the {len(report.test):,} test digits. "
        "Generated by `dvc repro zoo_report` "
        f"(params hash `{params_hash}`); all numbers are measured, the full table is `reports/zoo.csv`.",
        "",
        "Columns: `test_mse` / `test_bce` are on each variant's own test input (`test_input`: clean digits, or for a "
        "denoising variant the fixed corrupted copy of the `corrupt` stage), always against the clean digits; "
        "`clean_mse` and `mse_<noise>` feed every variant the clean / corrupted digits. MSE is per pixel, "
        "cross-entropy in nats per image (reconstruction clipped to [1e-6, 1 - 1e-6]). Probes read the codes (the VAE's "
        f"posterior mean, the flattened conv code): logistic regression (C in {list(z.logreg_C)} chosen on validation) "
        f"and {z.knn_k}-NN, both trained on {z.probe_train:,} training codes. `mean_activation` is the mean |activation| "
        f"of the first hidden layer (conv: the code), `near_zero_fraction` the share below {z.near_zero:g}.",
        "",
        shown.to_markdown(index=False, floatfmt=".4g"),
        "",
        f"Best linear probe: {best['variant']} ({pct(best['linear_probe_acc'])}); "
        f"best k-NN: {frame.loc[frame['knn_acc'].idxmax(), 'variant']} ({pct(frame['knn_acc'].max())}).",
        "",
    ]
    lines += pca_section(report.metrics)
    lines += tour_section(z, report.metrics)
    lines += layers_section(z, report.metrics)
    sections = [
        ("codes", "2-D codes"),
        ("reconstructions", "Reconstructions"),
        ("denoising", "Denoising"),
        ("curves", "Loss curves"),
        ("sparsity", "Sparsity"),
        ("vae", "Variational autoencoder"),
    ]
    for key, heading in sections:
        rel = FIGURES[key].removeprefix("reports/")
        lines += [f"## {heading}", "", f"![{heading}]({rel})", "", report.text[key], ""]
    return "\n".join(lines)
