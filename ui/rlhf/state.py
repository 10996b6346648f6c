"""The Pre-training vs RLHF page: its declaration and the choices its widgets offer; its remembered widgets
survive a visit to another page, and its view is in the URL (so F5, a link or a restarted server bring back the
preference set, the prompt and seed, the tuning settings and `run`, the tuning run it shows).
"""
from engine.train.preference_sets import NAMES, SETS

from ..page import Page
from ..runs import run_setting
from ..view import Unusable, choice, kept, whole

BETAS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
LEARNING_RATES = (1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4)
STEPS = tuple(range(5, 101, 5))
MAX_PROMPT_CHARS = 300
SET_KEYS = tuple(s.key for s in SETS)


def _prompt(ctx, raw: str) -> str:
    if len(raw) > MAX_PROMPT_CHARS:
        raise Unusable(f"longer than {MAX_PROMPT_CHARS} characters")
    return raw


PAGE = Page("rlhf", "Pre-training vs RLHF", "pages/6_Pretraining_vs_RLHF.py", ":material/thumbs_up_down:",
            "Tell the model which completions you prefer and tune it with DPO: what changes, and what does not.",
            settings=(kept("set", lambda ctx, raw: choice(raw, SET_KEYS, "preference set")),
                      kept("set_name", lambda ctx, raw: choice(raw, NAMES, "name")),
                      kept("prompt", _prompt), kept("seed", lambda ctx, raw: whole(raw, 0, 9_999, "seeds")),
                      kept("beta", lambda ctx, raw: choice(raw, BETAS, "beta")),
                      kept("lr", lambda ctx, raw: choice(raw, LEARNING_RATES, "learning rate")),
                      kept("steps", lambda ctx, raw: choice(raw, STEPS, "number of steps")), run_setting()),
            favicon="👍")
remembered = PAGE.remembered
