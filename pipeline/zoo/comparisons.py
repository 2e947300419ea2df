"""The zoo report's sections that set zoo variants beside models outside the zoo, as Markdown from the numbers.

The linear autoencoder beside PCA (the `pca` block of its metrics), the Keras tour's models beside ours
(variants with `tour_of`), and the table's layer kinds beside the zoo's nets (`zoo.layers`). Each function returns
the section's Markdown lines, none when there is nothing to compare; each reads only the variants' metrics, no
model or data.
"""

from __future__ import annotations

import pandas as pd

from pipeline.params import ZooParams
from pipeline.zoo.tables import fmt, pct, tour_sentences, tour_table


def pca_section(metrics: dict[str, dict]) -> list[str]:
    """Markdown lines of "Linear autoencoder vs PCA" (none when no variant was compared with PCA)."""
    out = []
    for m in metrics.values():
        if "pca" not in m:
            continue
        p, d, e = m["pca"], m["pca"]["decoder_angles"], m["pca"]["encoder_angles"]
        further = "further off" if e["mean_deg"] > d["mean_deg"] else "no further off"
        out.append(
            f"{m['title']} against PCA with {p['k']} components: the principal angles between the decoder's "
            f"subspace (the span of the reconstructions) and PCA's are {fmt(d['max_deg'])}° at most "
            f"({fmt(d['mean_deg'])}° on average). The encoder's rows are {further} ({fmt(e['max_deg'])}° at most, "
            f"{fmt(e['mean_deg'])}° on average): the loss pins only what the encoder does to the data, and "
            f"{p['constant_pixels']} of the 784 pixels never vary in the training digits, so the encoder's weights "
            "on them keep their random initial values. Test MSE per pixel: autoencoder "
            f"{fmt(m['reconstruction']['clean']['mse'])}, PCA {fmt(p['test']['mse'])} (the best any rank-{p['k']} "
            f"linear map can do; it explains {pct(p['explained_variance'])} of the training variance)."
        )
    if text := " ".join(out):
        return ["## Linear autoencoder vs PCA", "", text, ""]
    return []


def tour_section(z: ZooParams, metrics: dict[str, dict]) -> list[str]:
    """Markdown lines of "The tour's models beside ours" (none when no variant has `tour_of`)."""
    frame = tour_table(z, metrics)
    if frame.empty:
        return []
    intro = (
        "The Keras tour's own versions of our variants (`tour_of`), trained and scored exactly like ours; "
        "test MSE per pixel on each variant's test input, linear-probe accuracy on its codes."
    )
    return [
        "## The tour's models beside ours",
        "",
        intro,
        "",
        frame.to_markdown(index=False, floatfmt=".4g"),
        "",
        " ".join(tour_sentences(z, metrics)),
        "",
    ]


def layers_section(z: ZooParams, metrics: dict[str, dict]) -> list[str]:
    """Markdown lines of "The table's layer kinds" (none when zoo.layers is empty): each layer beside its `reference`
    (the net without the regulariser) and its `counterpart` (the zoo's own, Adam-trained version of the idea)."""
    rows, settings = [], []
    for name, layer in z.layers.items():
        for role, other in (("table kind", name), ("reference", layer.reference), ("counterpart", layer.counterpart)):
            if other is None:
                continue
            m = metrics[other]
            rows.append(
                {
                    "layer": name,
                    "role": role,
                    "variant": m["title"],
                    "test_mse": m["test"]["mse"],
                    "linear_probe_acc": m["probe"]["linear_probe_acc"],
                    "knn_acc": m["probe"]["knn_acc"],
                    "jacobian_fro2": m["jacobian_fro2"],
                    "mean_activation": m["sparsity"]["mean_activation"],
                }
            )
        extra = [f"noise {layer.noise:g}"] if layer.noise else []
        extra += [f"{k} {v:g}" for k, v in sorted(layer.options.items())]
        h = metrics[name]["history"]["valid_loss"]
        settings.append(
            f"{metrics[name]['title']}: kind `{layer.kind}`, 784-{layer.hidden}, {', '.join([*extra, ''])}SGD at rate "
            f"{layer.lr:g}, minibatch {layer.batch_size}, {layer.epochs} epochs (validation objective "
            f"{fmt(h[0])} after the first, {fmt(h[-1])} after the last)."
        )
    if not rows:
        return []
    intro = (
        "Each entry of `zoo.layers` is one layer of a kind the table's stacks pretrain with "
        "(`pipeline/training/kinds`), trained by the table's own loop (`layer_group.train_layers`: the kind's "
        "corruption and closed-form SGD step, its initial weights) instead of Adam, and scored like every variant: "
        "test MSE per pixel on clean digits, probes on its codes, ||dh/dx||_F^2 of its hidden layer on the test digits."
    )
    table = pd.DataFrame(rows).to_markdown(index=False, floatfmt=".4g")
    return ["## The table's layer kinds", "", intro, "", table, "", " ".join(settings), ""]
