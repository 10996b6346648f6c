"""A chat model's template, made visible: the tokens an instruct model really reads for one user message.

An instruct model was tuned on conversations laid out one fixed way: markers for who speaks and where a turn
ends, most of them special tokens (`<|im_start|>user ... <|im_end|>` for SmolLM2 and Qwen2.5). The layout is a
Jinja template shipped with the tokenizer (`chat_template` in tokenizer_config.json, or chat_template.jinja).

It is rendered by transformers' own `apply_chat_template`, which compiles templates in Jinja's
`ImmutableSandboxedEnvironment`: a template cannot reach Python's internals (attribute access to `__class__`
and the like raises a SecurityError), cannot change the objects it is given, and `range` is capped. Nothing
here ever runs code from a model (no trust_remote_code). A template longer than MAX_TEMPLATE_CHARS, or one that
fails to render, is refused in one plain sentence (`ChatTemplateError`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .files import MAX_TOKENIZER_BYTES, TOKENIZER, read_capped
from .tokenizer import check_tokenizer_patterns, display_token, load_tokenizer

MAX_TEMPLATE_CHARS = 64_000  # real templates are 0.5-10 KB; Qwen2.5's, with tool calling, about 2.5 KB
MAX_RENDERED_CHARS = 100_000  # what one message may turn into


class ChatTemplateError(ValueError):
    """One plain sentence: why this tokenizer's chat template cannot be shown."""


@dataclass(frozen=True)
class ChatPrompt:
    """One user message laid out by a chat template, token by token."""
    text: str  # the rendered template
    ids: tuple[int, ...]
    tokens: tuple[str, ...]  # display forms (special tokens as they are written, e.g. <|im_start|>)
    special: tuple[bool, ...]  # which tokens are special (markers the user cannot type)


def has_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def special_ids(tokenizer) -> set[int]:
    """Every special token's id: the tokenizer's named ones and the added tokens marked special."""
    ids = set(getattr(tokenizer, "all_special_ids", ()))
    for token_id, added in getattr(tokenizer, "added_tokens_decoder", {}).items():
        if getattr(added, "special", False):
            ids.add(int(token_id))
    return ids


def chat_prompt(tokenizer, message: str, system: str | None = None) -> ChatPrompt:
    """`message` as the user's turn, with the assistant's turn opened (add_generation_prompt), as the model's
    own template lays it out. Raises ChatTemplateError when the tokenizer has no template or it cannot be used."""
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        raise ChatTemplateError("this tokenizer has no chat template: it belongs to a base model, which was "
                                "never tuned on conversations")
    if not isinstance(template, str):
        raise ChatTemplateError("this tokenizer has several named chat templates; Glassbox shows a single one")
    if len(template) > MAX_TEMPLATE_CHARS:
        raise ChatTemplateError(f"its chat template is {len(template):,} characters long, more than the "
                                f"{MAX_TEMPLATE_CHARS:,} Glassbox renders")
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": message}]
    try:
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
    except Exception as e:  # noqa: BLE001 - a template may raise anything Jinja can (SecurityError included)
        raise ChatTemplateError(f"its chat template could not be rendered ({type(e).__name__})") from None
    if not isinstance(text, str) or len(text) > MAX_RENDERED_CHARS:
        raise ChatTemplateError("its chat template made something other than a short text of one message")
    ids = [int(i) for i in (ids[0] if ids and isinstance(ids[0], list) else ids)]
    specials = special_ids(tokenizer)
    return ChatPrompt(text=text, ids=tuple(ids), tokens=tuple(display_token(tokenizer, i) for i in ids),
                      special=tuple(i in specials for i in ids))


def load_checked_tokenizer(folder: str | Path):
    """A model folder's tokenizer alone (its chat template with it), after the same check of its splitting
    expressions as loading the model does. Raises ValueError in one sentence."""
    folder = Path(folder)
    if (folder / TOKENIZER).is_file():
        check_tokenizer_patterns(read_capped(folder / TOKENIZER, MAX_TOKENIZER_BYTES))
    return load_tokenizer(folder)
