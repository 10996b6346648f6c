"""The Intervene page: its declaration, its tabs and link settings, and the choices it keeps.

Every choice is a remembered widget (ui.state), so a closed tab or another page keeps it, and every link
parameter reads and writes the widget it names. The patching pair is its own two prompts (the text box above
is what the other tabs change the model on).
"""
from __future__ import annotations

from engine.intervene.examples import PAIRS, STEERING_SETS

from ..page import Page
from ..view import Context, Setting, Unusable, head, kept, label, layer, number, slug, tab, whole

TABS = ("Activation patching", "Ablation", "Steering", "Force a token", "Which tokens mattered")
OWN_PAIR = "Your own pair"
OWN_SETS = "Your own sets"
GRIDS = ("resid", "heads")  # the patching grid shown: residual stream (layer x position) or head outputs
PARTS = ("head", "mlp", "neuron")
MODES = ("zero", "mean")
MAX_STRENGTH = 40.0
PROMPT_CHARS = 600  # a patching prompt


def pair_key(name: str) -> str:
    """A built-in pair's link value: its first word ("bank: by the river or in town" -> "bank")."""
    return slug(name.split(":")[0])


def _read_pair(ctx: Context) -> str | None:
    name = PAGE.kept("pair")
    return pair_key(name) if name in PAIRS else "own" if name == OWN_PAIR else None


def _apply_pair(ctx: Context, raw: str) -> None:
    if raw == "own":  # the prompts follow as `clean` and `corrupted`
        PAGE.choose("pair", OWN_PAIR)
        return
    for name in PAIRS:
        if raw in (pair_key(name), slug(name)):
            PAGE.choose("pair", name)
            return
    raise Unusable("no such example pair")


def _own(widget: str) -> Setting:
    """One prompt of the reader's own pair: in a link only when the pair is their own."""
    def read(ctx: Context) -> str | None:
        return PAGE.kept(widget) if PAGE.kept("pair") == OWN_PAIR else None

    def apply(ctx: Context, raw: str) -> None:
        if len(raw) > PROMPT_CHARS:
            raise Unusable(f"longer than {PROMPT_CHARS:,} characters")
        PAGE.choose("pair", OWN_PAIR)
        PAGE.choose(widget, raw)
    return Setting(widget, read, apply)


def _cell(ctx: Context, raw: str) -> tuple[int, int]:
    """A grid cell as "layer.index" (a position or a head, by the grid shown)."""
    parts = raw.split(".")
    if len(parts) != 2:
        raise Unusable("a cell is layer.position or layer.head, e.g. 2.15")
    return layer(ctx, parts[0]), whole(parts[1], 0, 4096, "positions and heads")


def _neuron(ctx: Context, raw: str) -> int:
    return whole(raw, 0, ctx.choice.model.config.d_mlp - 1, "neurons")


def _output(ctx: Context, raw: str) -> int:
    """The output token whose inputs are scored: a position of the text from 1, or one past the last (the
    token after the text)."""
    return whole(raw, 1, ctx.n_positions, "output positions (one past the text: the next token)")


def _steering_set(ctx: Context, raw: str) -> str:
    if raw == "own":
        return OWN_SETS
    for name in STEERING_SETS:
        if raw in (name, slug(name)):
            return name
    raise Unusable("no such set of prompts")


PAGE = Page("intervene", "Intervene", "pages/9_Intervene.py", ":material/science:",
            "Change one thing inside the model and watch what it does: patching, ablation, steering, forcing a "
            "token, which input tokens mattered.",
            settings=(tab(TABS), Setting("pair", _read_pair, _apply_pair), _own("clean"), _own("corrupted"),
                      kept("grid", lambda ctx, raw: label(raw, GRIDS, "grid")),
                      kept("cell", _cell, lambda c: f"{c[0]}.{c[1]}"),
                      kept("part", lambda ctx, raw: label(raw, PARTS, "part")), kept("layer", layer),
                      kept("head", head), kept("neuron", _neuron), kept("mode", lambda ctx, raw: label(raw, MODES,
                                                                                                        "mode")),
                      kept("set", _steering_set, lambda v: "own" if v == OWN_SETS else slug(v)),
                      kept("steer_layer", layer),
                      kept("strength", lambda ctx, raw: number(raw, -MAX_STRENGTH, MAX_STRENGTH)),
                      kept("seed", lambda ctx, raw: whole(raw, 0, 2**31 - 1, "seeds")),
                      kept("output", _output)),
            favicon="🧪")

remembered = PAGE.remembered
kept_value = PAGE.kept
choose = PAGE.choose
