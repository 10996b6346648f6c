"""Every GLASSBOX_* environment variable, in one table: its name, its type, its default and what it bounds.

`Settings` is the table: one field per variable, each declared with `_var(name, parser, default, what)`, so
the README's table, the parser and the error messages all come from the same row. Nothing else in the app
reads a GLASSBOX_* variable; modules ask `current()` for the typed values.

- One parser per kind of value (a whole number in a range, a positive number, a switch, a path, free text),
  and one error: a `SettingError` whose one line names the variable, says what it must be and quotes what it
  got ("GLASSBOX_MAX_FORWARDS must be a whole number from 1 to 64, not 'abc'"). An empty value means unset.
- `current()` parses the environment once and keeps the result; it parses again only when a GLASSBOX_*
  variable has changed (tests set them with monkeypatch), so a server reads its settings once.
- `load(environ)` parses any mapping, for a caller (or a test) that brings its own.
- The hosted-model settings (GLASSBOX_HOSTED_*) and NDIF's (GLASSBOX_NDIF*, NDIF_API_KEY, HF_TOKEN) may also come
  from Streamlit's secrets: the UI passes them as `overlay`, which fills only those variables and only where
  the environment leaves them unset. The engine never imports Streamlit.
- Three rows are the ecosystem's own names, read here with the rest so nothing else reads the environment:
  NDIF_API_KEY (nnsight's), HF_TOKEN and HF_ENDPOINT (the Hugging Face Hub's). They keep their names.

Two variables were merged into GLASSBOX_TRACE_BUDGET_MB: GLASSBOX_SESSION_TRACE_MB and GLASSBOX_SERVER_TRACE_MB
each defaulted to two traces at the per-trace budget, and bounded caches of those traces; the caches now hold
TRACES_KEPT traces' worth of that budget. Setting a removed name logs a warning naming its replacement.
"""
from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

LOG = logging.getLogger("glassbox.settings")
PREFIX = "GLASSBOX_"
HOSTED_PREFIX = PREFIX + "HOSTED_"  # the settings Streamlit's secrets may also give
TRACES_KEPT = 2  # a trace cache (one session's, or the server models' together) holds this many traces' budget
MB = 2**20
_CORES = os.cpu_count() or 1
# Names that were settings once, with what replaced them (a warning says so when one is set).
REMOVED = {
    PREFIX + "SESSION_TRACE_MB": f"{PREFIX}TRACE_BUDGET_MB (a session's traces hold {TRACES_KEPT} traces' worth)",
    PREFIX + "SERVER_TRACE_MB": f"{PREFIX}TRACE_BUDGET_MB (the server models' traces hold {TRACES_KEPT} traces' "
                                "worth)",
}
TEST_ONLY = {PREFIX + "REQUIRE_BROWSER", PREFIX + "REQUIRE_POSTGRES"}  # read by the tests, not by the app
NDIF_DEFAULT_URL = "https://api.ndif.us"  # nnsight's own default


class SettingError(ValueError):
    """A GLASSBOX_* variable with a value that cannot be used; the message is one line naming it."""


Parser = Callable[[str], Any]  # raw text (stripped, not empty) -> value; ValueError("must be ...") if unusable


def whole(low: int, high: int) -> Parser:
    def parse(raw: str) -> int:
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise ValueError(f"must be a whole number from {low} to {high}")
        return int(raw)
    return parse


def positive(unit: str, high: float = math.inf) -> Parser:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not 0 < value <= high or math.isinf(value):  # NaN fails the comparison too
            top = "" if math.isinf(high) else f" and at most {high:g}"
            raise ValueError(f"must be a number above 0{top} ({unit})")
        return value
    return parse


def switch(raw: str) -> bool:
    word = raw.lower()
    if word not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ValueError("must be 1 or 0 (on or off)")
    return word in ("1", "true", "yes", "on")


def text(raw: str) -> str:
    return raw


def lower(raw: str) -> str:
    return raw.lower()


def path(raw: str) -> Path:
    return Path(raw).expanduser()


def database_url(raw: str) -> str:
    """A database URL SQLAlchemy can open with the drivers Glassbox installs (PostgreSQL through psycopg,
    SQLite), or a file path, which means an SQLite file there."""
    scheme = raw.split("://", 1)[0].lower() if "://" in raw else ""
    if not scheme:
        return "sqlite:///" + str(Path(raw).expanduser().resolve())
    if scheme in ("postgres", "postgresql", "postgresql+psycopg"):
        return "postgresql+psycopg://" + raw.split("://", 1)[1]
    if scheme == "sqlite" and raw.startswith("sqlite:///"):
        return raw
    raise ValueError("must be a file path, sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DATABASE")


def web_address(raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// address")
    return raw.rstrip("/")


def _var(name: str, parse: Parser, default: Any, bounds: str, *, secret: bool = False, hidden: bool = False,
         shown: str | None = None, own_name: bool = False):
    """One row of the table: GLASSBOX_<name>, its parser, its default, what it bounds (the README's words);
    `secret`: Streamlit's secrets may give it too; `hidden`: never in a repr or a message (an API key);
    `shown`: the default in words, where it depends on the machine; `own_name`: the variable is `name` itself,
    a name other tools read too (NDIF_API_KEY, HF_TOKEN)."""
    meta = {"env": name if own_name else PREFIX + name, "parse": parse, "bounds": bounds, "secret": secret,
            "shown": shown}
    return field(default=default, metadata=meta, repr=not hidden)


@dataclass(frozen=True)
class Settings:
    # Where models run, and how the server's cores are shared
    device: str = _var("DEVICE", lower, "", "the device models run on: cpu, cuda, cuda:N or mps (one this machine "
                       "lacks is an error when the model loads)", shown="CUDA, then MPS, then the CPU")
    forward_threads: int = _var("FORWARD_THREADS", whole(1, 256), 1, "torch threads per forward pass a page runs")
    max_forwards: int = _var("MAX_FORWARDS", whole(1, 64), min(_CORES, 64),
                             "forward passes at once, process-wide (the rest wait behind a spinner)",
                             shown="the core count")
    train_threads: int = _var("TRAIN_THREADS", whole(1, 256), max(1, _CORES // 2),
                              "CPU threads of one background run (training, tuning, a neuron atlas)",
                              shown="half the cores")
    # Background runs (training and preference tuning)
    max_training_runs: int = _var("MAX_TRAINING_RUNS", whole(1, 64), 1,
                                  "background runs at once, process-wide; the rest wait in line")
    max_train_minutes: float = _var("MAX_TRAIN_MINUTES", positive("minutes"), 20.0,
                                    "the longest one background run may hold its slot")
    reconnect_grace_s: float = _var("RECONNECT_GRACE_S", positive("seconds"), 90.0,
                                    "how long a run outlives its browser session (a Wi-Fi drop is shorter)")
    # Memory: one trace, the models, the disk
    trace_budget_mb: float = _var("TRACE_BUDGET_MB", positive("megabytes"), 256.0,
                                  f"one trace (a look inside one text); each trace cache holds {TRACES_KEPT} "
                                  "traces' worth: one session's own models', and the server models' together")
    trace_budget_s: float = _var("TRACE_BUDGET_S", positive("seconds"), 5.0,
                                 "one trace's estimated time on a slow CPU (uploads and trained models)")
    intervene_budget_s: float = _var("INTERVENE_BUDGET_S", positive("seconds"), 30.0,
                                     "one intervention's estimated time on a slow CPU (a patching grid, "
                                     "leave-one-out over a long text): dearer ones are refused with their price")
    model_budget_mb: float = _var("MODEL_BUDGET_MB", positive("megabytes"), 1536.0,
                                  "the server models loaded at once: their fp32 weights plus one trace each")
    max_models: int = _var("MAX_MODELS", whole(1, 64), 2, "server models kept loaded at once, besides the "
                           "built-in one (least recently used out first)")
    session_models_mb: float = _var("SESSION_MODELS_MB", positive("megabytes"), 300.0,
                                    "the weights of one session's own models (trained, tuned, uploaded) together")
    quant_budget_mb: float = _var("QUANT_BUDGET_MB", positive("megabytes"), 256.0,
                                  "quantized copies of models kept at once, process-wide (the Feed-forward page's "
                                  "Quantization tab; a copy of a model bigger than this is made, used and let go)")
    hub_disk_mb: float = _var("HUB_DISK_MB", positive("megabytes"), 4096.0,
                              "disk for Hub downloads; no download starts once the Hub folder holds this much")
    # Where models and data come from
    model: Path | None = _var("MODEL", path, None, "the built-in model's folder",
                              shown="models/glassbox-stories")
    models_dir: Path | None = _var("MODELS_DIR", path, None,
                                   "a folder whose sub-folders are offered as server models", shown="none")
    hub: bool = _var("HUB", switch, True, "0 hides the Hugging Face Hub picker (a server that must not download)")
    hub_dir: Path | None = _var("HUB_DIR", path, None, "where Hub models are downloaded",
                                shown=".cache/hub-models")
    gpt2_tokenizer: Path | None = _var("GPT2_TOKENIZER", path, None, "a folder with GPT-2's tokenizer, for the "
                                       "Tokens page's comparison (looked for first)", shown="none")
    gutenberg_url: str | None = _var("GUTENBERG_URL", web_address, None,
                                     "a Project Gutenberg mirror for the Train page's books",
                                     shown="https://www.gutenberg.org")
    # The workshop room (ui/room): its database and its limits
    room_db: str | None = _var("ROOM_DB", database_url, None, "where workshop rooms are kept: a file path or "
                               "sqlite:///PATH (one server), or postgresql://... (several replicas share it)",
                               hidden=True, shown=".cache/rooms.db (SQLite)")
    room_max_attendees: int = _var("ROOM_MAX_ATTENDEES", whole(1, 1000), 100, "attendees one room admits")
    room_hours: float = _var("ROOM_HOURS", positive("hours", 168), 12.0,
                             "how long a room stays open after it is opened (its presenter can end it sooner)")
    # The hosted model beside ours on the Next token page (also from Streamlit secrets)
    hosted_base_url: str = _var("HOSTED_BASE_URL", text, "", "the host's endpoint, up to the version (…/v1)",
                                secret=True, shown="none: the section is off until a user types one")
    hosted_model: str = _var("HOSTED_MODEL", text, "", "the host's model id", secret=True, shown="none")
    hosted_api: str = _var("HOSTED_API", text, "chat", "chat, completions or anthropic", secret=True)
    hosted_api_key: str = _var("HOSTED_API_KEY", text, "", "the host's key: sent only to the host's endpoint, "
                               "never to a browser", secret=True, hidden=True, shown="none")
    hosted_user_endpoints: bool = _var("HOSTED_USER_ENDPOINTS", switch, True,
                                       "0: users may not type their own endpoint and key", secret=True)
    hosted_allow_private: bool = _var("HOSTED_ALLOW_PRIVATE", switch, False,
                                      "1: a typed endpoint may be a loopback or private address (a laptop running "
                                      "Ollama or vLLM); off, it must be public", secret=True)
    hosted_per_minute: int = _var("HOSTED_PER_MINUTE", whole(1, 1000), 20,
                                  "requests per session per minute (N samples are N requests)", secret=True)
    hosted_max_samples: int = _var("HOSTED_MAX_SAMPLES", whole(1, 50), 10, "samples per click (at most the "
                                   "requests per minute)", secret=True)
    hosted_timeout_s: float = _var("HOSTED_TIMEOUT_S", positive("seconds", 60), 8.0,
                                   "seconds per request, the whole answer included", secret=True)
    # Models on NDIF, the National Deep Inference Fabric, through nnsight (also from Streamlit secrets)
    ndif: bool = _var("NDIF", switch, False, "1 offers the models NDIF runs (Llama-3.1-8B/70B/405B, GPT-J, GPT-2) in "
                      "the model picker; each request then sends the text to NDIF", secret=True)
    ndif_url: str = _var("NDIF_URL", web_address, NDIF_DEFAULT_URL, "the NDIF address requests and keys go to: the "
                         "host's setting only, never typed by a user (nnsight loads NDIF's answers with torch.load)",
                         secret=True)
    ndif_user_keys: bool = _var("NDIF_USER_KEYS", switch, True, "0: users may not type their own NDIF key or "
                                "Hugging Face token", secret=True)
    ndif_max_mb: float = _var("NDIF_MAX_MB", positive("megabytes", 1024), 16.0, "one NDIF answer: a request "
                              "whose answer would be larger is refused, with the length that fits", secret=True)
    ndif_timeout_s: float = _var("NDIF_TIMEOUT_S", positive("seconds", 3600), 120.0, "one NDIF job, its wait in "
                                 "NDIF's queue included; then it is given up", secret=True)
    ndif_jobs: int = _var("NDIF_JOBS", whole(1, 64), 8, "NDIF jobs waited on at once, process-wide (the same "
                          "request from many sessions is one job)", secret=True)
    ndif_dir: Path | None = _var("NDIF_DIR", path, None, "configs and tokenizers of NDIF models (never weights), "
                                 "fetched from the Hub once", shown=".cache/ndif-models")
    ndif_api_key: str = _var("NDIF_API_KEY", text, "", "the host's NDIF key (nnsight's own name): sent only to "
                             "the NDIF address, never to a browser", secret=True, hidden=True, shown="none",
                             own_name=True)
    hf_token: str = _var("HF_TOKEN", text, "", "the host's Hugging Face token: fetches gated configs (Meta's "
                         "Llama) and Hub models, sent only to the Hub", secret=True, hidden=True, shown="none",
                         own_name=True)
    hf_endpoint: str = _var("HF_ENDPOINT", text, "", "the Hugging Face Hub's address (a mirror), checked when the "
                            "Hub is asked", shown="https://huggingface.co", own_name=True)

    # -- in the units the code uses ----------------------------------------------------------------------------

    @property
    def trace_budget_bytes(self) -> int:
        return int(self.trace_budget_mb * MB)

    @property
    def trace_cache_bytes(self) -> int:
        """What one trace cache may hold: TRACES_KEPT traces at the per-trace budget."""
        return TRACES_KEPT * self.trace_budget_bytes

    @property
    def model_budget_bytes(self) -> int:
        return int(self.model_budget_mb * MB)

    @property
    def session_models_bytes(self) -> int:
        return int(self.session_models_mb * MB)

    @property
    def quant_budget_bytes(self) -> int:
        return int(self.quant_budget_mb * MB)

    @property
    def hub_disk_bytes(self) -> int:
        return int(self.hub_disk_mb * MB)

    @property
    def max_run_s(self) -> float:
        return 60 * self.max_train_minutes


DEFAULTS = Settings()
NAMES = {f.name: f.metadata["env"] for f in fields(Settings)}  # field -> GLASSBOX_ variable (or its own name)
OWN_NAMES = {name for name in NAMES.values() if not name.startswith(PREFIX)}  # NDIF_API_KEY, HF_TOKEN, ...
SECRET_NAMES = frozenset(f.metadata["env"] for f in fields(Settings) if f.metadata["secret"])
_SECRET = SECRET_NAMES


def env_name(setting: str) -> str:
    """The variable of a field: env_name("max_forwards") == "GLASSBOX_MAX_FORWARDS" (for messages)."""
    return NAMES[setting]


def load(environ: Mapping[str, str], overlay: Mapping[str, object] | None = None) -> Settings:
    """The settings a mapping of variables describes; SettingError (one line, naming the variable) for the
    first unusable value. `overlay` (Streamlit's secrets) fills the hosted settings `environ` leaves unset."""
    values = {}
    for f in fields(Settings):
        name = f.metadata["env"]
        raw = str(environ.get(name) or "").strip()
        if not raw and name in _SECRET and overlay and overlay.get(name) is not None:
            raw = str(overlay[name]).strip()  # a TOML secret may be a number or a boolean
        if not raw:
            continue  # unset or empty: the default
        try:
            values[f.name] = f.metadata["parse"](raw)
        except ValueError as e:
            shown = "(hidden)" if not f.repr else repr(raw[:60])
            raise SettingError(f"{name} {e}, not {shown}") from None
    return Settings(**values)


def current(overlay: Mapping[str, object] | None = None) -> Settings:
    """This process's settings: the environment's GLASSBOX_* variables, parsed once per distinct value."""
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(PREFIX) or k in OWN_NAMES))
    extra = tuple(sorted((k, str(v)) for k, v in (overlay or {}).items() if k in _SECRET))
    return _parsed(env, extra)


@lru_cache(maxsize=8)
def _parsed(env: tuple[tuple[str, str], ...], extra: tuple[tuple[str, str], ...]) -> Settings:
    settings = load(dict(env), dict(extra))  # a SettingError is raised, not kept: every call says it again
    for name, _ in env:
        if name in REMOVED:
            LOG.warning("%s is no longer read: set %s instead", name, REMOVED[name])
        elif name not in NAMES.values() and name not in TEST_ONLY:
            LOG.warning("%s is not a Glassbox setting (the README's Settings table lists them)", name)
    return settings


def table() -> list[tuple[str, str, str]]:
    """(variable, default, what it bounds) for every setting, in the order of the README's table."""
    rows = []
    for f in fields(Settings):
        default = f.default
        shown = f.metadata["shown"] or ("unset" if default is None or default == "" else
                                        "on" if default is True else "off" if default is False else
                                        f"{default:g}" if isinstance(default, float) else str(default))
        rows.append((f.metadata["env"], shown, f.metadata["bounds"]))
    return rows
