"""The Feed-forward page: its declaration, tabs and link settings.

The layer is one choice for the page (Activations and the Neuron explorer show the same layer), and so is the
position (the Residual stream's waterfall and the Logit lens's table), so a link's `layer=` and `token=` mean
the same on every tab.
"""
from engine.inspect.quantize import BITS

from ..page import Page
from ..view import Context, Unusable, kept, layer, position, tab, whole

TABS = ("Activations", "Neuron explorer", "Residual stream", "Logit lens", "Parameters", "Quantization")


def _neuron(ctx: Context, raw: str) -> int:
    return whole(raw, 0, ctx.choice.model.config.d_mlp - 1, "neurons")


def _bits(ctx: Context, raw: str) -> int:
    bits = whole(raw, min(BITS), max(BITS), "bit widths")
    if bits not in BITS:
        raise Unusable(f"bit widths are {', '.join(map(str, BITS))}")
    return bits


PAGE = Page("feedforward", "Feed-forward", "pages/3_Feed_forward.py", ":material/hub:",
            "What each layer adds: MLP neurons, the residual stream, the logit lens, where the parameters live, "
            "and the weights in fewer bits.",
            settings=(tab(TABS), kept("layer", layer), kept("token", position, widget="position"),
                      kept("neuron", _neuron), kept("bits", _bits)), favicon="🧮")
