"""The Train page: its declaration, the choices its widgets offer, and the session keys its modules share.

Its view in the URL (so F5, a link or a restarted server bring it back): the training text (which kind, the
pasted text, the book's number), the model's shape and the training settings, and `run`, the run it shows.
"""
from dataclasses import replace

from ..page import Page
from ..runs import run_setting
from ..state import kept_value
from ..view import Context, Setting, choice, kept, label, slug, whole

BUILTIN, PASTE, UPLOAD, BOOK = "Built-in stories", "Paste text", "Upload a .txt file", "Project Gutenberg book"
CORPUS_KINDS = (BUILTIN, PASTE, UPLOAD, BOOK)
MAX_PASTE_CHARS = 2_000_000
BUILTIN_TOKENIZER = 0  # vocabulary option: reuse the built-in model's tokenizer
LAYERS = (1, 2, 3, 4, 6, 8)
HEADS = (1, 2, 4, 8, 16)
WIDTHS = (16, 32, 48, 64, 96, 128, 192, 256, 384, 512)
CONTEXTS = (16, 32, 64, 128, 256, 512)
BATCHES = (1, 2, 4, 8, 16, 32, 64)
VOCABS = (512, 1024, 2048, 4096, BUILTIN_TOKENIZER)
# High rates stay on the slider on purpose: trying one is how you see a run diverge.
RATES = (1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 10.0, 100.0, 1000.0)
MAX_STEPS = 20_000


def _options(name: str, options: tuple, what: str) -> Setting:
    return kept(name, lambda ctx, raw: choice(raw, options, what))


def _with_kind(kind: str, setting: Setting) -> Setting:
    """A setting of one kind of training text: in the URL only while that kind is chosen."""
    def read(ctx: Context) -> str | None:
        return setting.read(ctx) if kept_value(ctx.page.key("corpus_kind")) == kind else None
    return replace(setting, read=read)


PAGE = Page("train", "Train", "pages/5_Train.py", ":material/model_training:",
            "Train a small transformer, watch it learn, then look inside the model you trained.",
            settings=(kept("corpus", lambda ctx, raw: label(raw, CORPUS_KINDS, "training text"), slug,
                           widget="corpus_kind"),
                      _with_kind(PASTE, kept("paste", lambda ctx, raw: raw[:MAX_PASTE_CHARS], lambda v: v or None,
                                             packed="pz")),
                      _with_kind(BOOK, kept("book", lambda ctx, raw: whole(raw, 1, 10_000_000, "book numbers"),
                                            widget="book_number")),
                      _options("n_layer", LAYERS, "number of layers"), _options("n_head", HEADS, "number of heads"),
                      _options("n_embd", WIDTHS, "width"), _options("block_size", CONTEXTS, "context"),
                      _options("vocab", VOCABS, "vocabulary"),
                      kept("max_steps", lambda ctx, raw: whole(raw, 1, MAX_STEPS, "steps")),
                      _options("batch_size", BATCHES, "batch size"), _options("learning_rate", RATES, "learning rate"),
                      run_setting()),
            favicon="🏋️")
ESTIMATE = PAGE.key("estimate_s")  # session key: the cost panel's estimate of the run's length, in seconds
