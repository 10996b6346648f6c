"""The Feed-forward page's MLP activations, drawn in the browser (js/activations.js): the chosen layer's most active
neurons on every token, how its activations spread, the share firing per token, and every layer at a glance.

Sent once per (model, text, layer, start marker shown or not): the activations of the neurons the view can show
(the MOST most active by their peak and by their mean, at most 2 x MOST columns, float32), the layer's
histogram and share firing, and the three per-layer measures of the overview. How many neurons, ranked by
which, and which measure the overview shows are chosen in the browser and reported back. The layer stays a
server choice: it is the page's one layer (the neuron explorer's too), and each sends its own activations.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from engine import Trace
from engine.inspect.neurons import firing_fraction, layer_strength, rank_neurons

from .component import Apply, show
from .payload import f32, i32, per_trace

FILES = ("activations.js",)
MOST = 128  # the "Neurons shown" slider's end
BINS = 60
METRICS = {"out_norm": ("size of what the MLP writes", "norm"), "firing": ("share of neurons firing", "share"),
           "mean": ("mean activation", "mean")}


def payload(trace: Trace, layer: int, first: int) -> dict[str, Any]:
    """What the view draws for `layer`, from position `first` on (once per trace, layer and first)."""
    def build() -> dict[str, Any]:
        post = trace.act[f"blocks.{layer}.mlp.hook_post"][first:].float()  # [pos, d_mlp]
        most = min(post.shape[1], MOST)
        by_max, _ = rank_neurons(post, most, "max")
        by_mean, _ = rank_neurons(post, most, "mean")
        cols = sorted(set(by_max.tolist()) | set(by_mean.tolist()))
        where = {n: i for i, n in enumerate(cols)}
        values = post.flatten().numpy()
        counts, edges = np.histogram(values, bins=BINS)
        return {"layer": layer, "d_mlp": int(post.shape[1]), "most": most, "tokens": list(trace.tokens[first:]),
                "first": first, "n_layer": trace.config.n_layer, "neurons": i32(torch.tensor(cols)),
                "values": f32(post[:, cols]),  # [pos, neuron shown]
                "by_max": [where[n] for n in by_max.tolist()], "by_mean": [where[n] for n in by_mean.tolist()],
                "hist": {"counts": counts.tolist(), "edges": edges.tolist(),
                         "fires": float((values > 0).mean()) if values.size else 0.0},
                "firing": f32(firing_fraction(post)),
                "metrics": {m: {"what": what, "unit": unit, "values": f32(layer_strength(trace, m)[:, first:])}
                            for m, (what, unit) in METRICS.items()}}
    return per_trace(trace, ("activations", layer, first), build)


def show_activations(trace: Trace, layer: int, first: int, key: str, sel: Mapping[str, Any], apply: Apply) -> None:
    """The view under widget key `key`. `sel`: n_show (1 to the slider's end), by ("max" or "mean") and metric
    (a key of METRICS); `apply`: the page's callback for the choices the browser reports (the same keys)."""
    show("activations", FILES, key, payload(trace, layer, first), sel, apply)
