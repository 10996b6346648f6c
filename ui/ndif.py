"""NDIF in the app: whether it is offered, with whose key, which models, and each one as the pages hold it.

- Offered when the host sets GLASSBOX_NDIF=1 (environment or .streamlit/secrets.toml) and nnsight is installed.
- Keys, with the hosted model's rules (ui/next_token/hosted_state.py): the host's NDIF_API_KEY (and HF_TOKEN for
  gated configs) from the environment or secrets, read for each request on the server and never put in a
  session; or a key a user types into a password field (GLASSBOX_NDIF_USER_KEYS=0 turns that off). A typed key
  is kept in this session's state only (`KEY`, `HF`), never copied to another key, the URL, a log line, a message,
  a file or another session; "Forget my keys" drops it, and it goes when the session ends.
- The address: GLASSBOX_NDIF_URL, the host's only. nnsight loads NDIF's answers with torch.load, so whoever
  answers at that address could run code on this server; a user never chooses where a request goes.
- Models: NDIF's list of running models (its /status call, asked at most once a minute), or a curated list when
  it cannot be reached; each opened once per process (config and tokenizer, architecture on the meta device)
  and shared by every session, read-only.
- Jobs: a page says what it reads (a TraceRequest) and `selective` gives the answer when this server has it, or
  starts the job (one per model, text and request for every session: engine.remote.jobs) and draws its state,
  its time and a cancel button in a fragment that redraws every POLL_S, until the answer is in.
"""
from __future__ import annotations

import importlib.util
import threading
import time

import streamlit as st

from engine import settings
from engine.remote import (BOARD, ModelUnavailable, NdifError, Offer, RemoteModel, RequestError, Selective, Ticket,
                           TraceRequest, UnsupportedModel, finish, offers, open_remote, plan, send_plan)

from .errors import Refused
from .server import session_id
from .text import md

PREFIX = "ndif:"  # the model picker's value of an NDIF model: "ndif:meta-llama/Llama-3.1-70B"
KEY = "ndif.key"  # session key: an NDIF key typed by this session's user (the only place it is held)
HF = "ndif.hf_token"  # session key: a Hugging Face token typed by this session's user
_KEY_BOX, _HF_BOX = "ndif.key_box", "ndif.hf_box"  # widget keys of the password fields (emptied once read)


def ndif_settings() -> settings.Settings:
    """The settings, with NDIF's (and the hosted model's) filled from st.secrets where the environment is silent."""
    try:
        secrets = {k: v for k, v in st.secrets.items() if k in settings.SECRET_NAMES}
    except Exception:  # no secrets file, or one that does not parse: there are none
        secrets = {}
    return settings.current(secrets)


def installed() -> bool:
    return importlib.util.find_spec("nnsight") is not None


def enabled() -> bool:
    """NDIF models are offered: the host turned them on and nnsight is installed."""
    return ndif_settings().ndif and installed()


def host() -> str:
    return ndif_settings().ndif_url


def host_name() -> str:
    return host().split("://", 1)[-1].split("/", 1)[0]


def api_key() -> str:
    """The key this session's requests carry: the one its user typed, else the host's (read now, never kept)."""
    return st.session_state.get(KEY) or ndif_settings().ndif_api_key


def has_key() -> bool:
    return bool(api_key())


@st.cache_data(ttl=60, show_spinner=False)
def _offers(address: str) -> tuple[list[Offer], str | None]:
    return offers(address)


def offered() -> tuple[list[Offer], str | None]:
    """The NDIF models to offer and, when NDIF's own list could not be had, a sentence saying so."""
    return _offers(host()) if enabled() else ([], None)


_models: dict[tuple[str, str | None], RemoteModel] = {}
_failed: dict[tuple, tuple[float, str]] = {}  # (repo, revision, typed token?) -> (when, why): not retried at once
_lock = threading.Lock()
RETRY_S = 60.0  # a model that could not be opened (the Hub unreachable, a gated config) is tried again after this


def remote_model(repo_id: str, revision: str | None = None) -> RemoteModel:
    """The RemoteModel of `repo_id`, opened once per process. Refused (one sentence) when it cannot be; that
    answer is kept for RETRY_S, so a page listing several models does not wait on the Hub for each, each time."""
    key = (repo_id, revision)
    typed = st.session_state.get(HF)
    failed_key = (*key, bool(typed))
    with _lock:
        if key in _models:
            return _models[key]
        when, why = _failed.get(failed_key, (0.0, ""))
    if time.monotonic() - when < RETRY_S:
        raise Refused(why)
    try:
        with st.spinner(f"Reading {repo_id}'s config and tokenizer (no weights)…"):
            model = open_remote(repo_id, revision, typed or ndif_settings().hf_token or None)
    except (ModelUnavailable, UnsupportedModel, ValueError) as e:
        why = f"{repo_id} cannot be opened: {e}"
        with _lock:
            _failed[failed_key] = (time.monotonic(), why)
        raise Refused(why) from None
    with _lock:
        return _models.setdefault(key, model)


def _keep_typed(box: str, key: str) -> None:
    typed = (st.session_state.get(box) or "").strip()
    st.session_state[box] = ""  # the field is emptied: the key stays in one place
    if typed:
        st.session_state[key] = typed


def forget_keys() -> None:
    st.session_state.pop(KEY, None)
    st.session_state.pop(HF, None)


def key_panel(remote_chosen: bool) -> None:
    """In the sidebar, when NDIF is on: under an NDIF model, where its text goes; then this session's own keys
    (an expander, open when an NDIF model is picked and no key is at hand)."""
    s = ndif_settings()
    if remote_chosen:
        st.caption(f"Runs on NDIF: each look inside sends your text to {md(host_name())}, where the model runs; "
                   "NDIF's log may keep it. Values come back in bf16." +
                   (" The host's NDIF key is used; it stays on the server." if s.ndif_api_key and
                    not st.session_state.get(KEY) else ""))
    own_key = s.ndif_user_keys and (not s.ndif_api_key or st.session_state.get(KEY))
    own_token = s.ndif_user_keys and (not s.hf_token or st.session_state.get(HF))
    if not own_key and not own_token:
        if remote_chosen and not s.ndif_api_key:
            st.warning("This server has no NDIF key, and typed keys are off here.", icon=":material/key_off:")
        return
    with st.expander("Your NDIF key", expanded=remote_chosen and not api_key()):
        if own_key and st.session_state.get(KEY):
            st.caption("Your NDIF key is held in this browser session's memory only.")
        elif own_key:
            st.text_input("NDIF API key", type="password", key=_KEY_BOX, on_change=_keep_typed, args=(_KEY_BOX, KEY),
                          autocomplete="off", placeholder="free at login.ndif.us",
                          help="Sent only to NDIF, with each request. Held in this browser session's memory only: "
                               "never written to disk, a log, the URL or a message; forgotten when the session "
                               "ends.")
        if own_token and st.session_state.get(HF):
            st.caption("Your Hugging Face token is held in this browser session's memory only.")
        elif own_token:
            st.text_input("Hugging Face token (to open a gated model such as Llama)", type="password", key=_HF_BOX,
                          on_change=_keep_typed, args=(_HF_BOX, HF), autocomplete="off",
                          help="Only to fetch a gated model's config.json and tokenizer from the Hub, once, never "
                               "its weights.")
        if st.session_state.get(KEY) or st.session_state.get(HF):
            st.button("Forget my keys", key="ndif.forget", on_click=forget_keys, icon=":material/key_off:")


def note() -> None:
    """NDIF in one line: why its list is the short one, or how a host turns it on (when it is off)."""
    s = ndif_settings()
    if s.ndif and not installed():
        st.caption("NDIF is turned on, but the nnsight package is not installed: `pip install nnsight`.")
    elif s.ndif:
        why = offered()[1]
        if why:
            st.caption(md(why))
    else:
        with st.expander("Frontier models on NDIF"):
            st.markdown("Llama-3.1-8B, 70B and 405B, GPT-J and GPT-2 run on NDIF, the National Deep Inference "
                        "Fabric, and the Attention, Next token and Scale ladder pages can look inside them. The "
                        "host turns it on with `GLASSBOX_NDIF=1` and an NDIF key (`NDIF_API_KEY`, free at "
                        "login.ndif.us), or lets users type their own; each request then sends the text to NDIF.")


# --- jobs: a page asks for what it draws ------------------------------------------------------------------

STAGES = ("received", "queued", "running", "completed")
_CANCELLED = "ndif.cancelled"  # session key: the requests this session cancelled (not asked again by themselves)
POLL_S = 0.5  # how often a waiting view looks at its job


def _job_key(model: RemoteModel, text: str, request: TraceRequest) -> tuple:
    return (model.repo_id, model.revision, text, request)


def selective(model: RemoteModel, text: str, request: TraceRequest) -> Selective | None:
    """The selective trace of `text` for `request`: at once when this server has it (any session asked the same),
    else None while its job runs, with the job's state, a cancel button and its time limit drawn here.
    Refused (one sentence) when the request cannot be asked (no text, too long an answer, no key)."""
    s = ndif_settings()
    cap = int(s.ndif_max_mb * settings.MB)
    try:
        p = plan(model, text, request, cap)
    except RequestError as e:
        raise Refused(str(e)) from None
    key = _job_key(model, text, request)
    ticket = BOARD.get(key)
    if ticket is not None and ticket.stage == "completed":
        return ticket.answer
    me = session_id() or "script"
    if ticket is not None and ticket.stage == "failed" and me in ticket.waiters:
        _say_failed(key, ticket)
        return None
    if key in st.session_state.get(_CANCELLED, set()):
        st.info("You cancelled this request to NDIF.", icon=":material/cancel:")
        st.button("Ask NDIF again", key=f"ndif.again.{hash(key)}", on_click=_uncancel, args=(key,),
                  icon=":material/refresh:")
        return None
    if ticket is None or not ticket.active:
        key_now = api_key()  # read in this session's run; the job's thread holds it until the job ends
        if not key_now:
            raise Refused("NDIF needs an API key: the host sets NDIF_API_KEY, or type yours under the model picker "
                          "(free at login.ndif.us).")
        try:
            ticket = BOARD.ask(key, me, lambda: send_plan(model, p, s.ndif_url, key_now, cap),
                               lambda saved, seconds: finish(model, p, saved, seconds),
                               limit_s=s.ndif_timeout_s, most=s.ndif_jobs)
        except NdifError as e:
            raise Refused(str(e)) from None
    else:
        ticket.waiters.add(me)
    st.fragment(run_every=POLL_S)(_wait)(key, model.repo_id)
    return None


def _uncancel(key: tuple) -> None:
    st.session_state.get(_CANCELLED, set()).discard(key)


def _cancel(key: tuple) -> None:
    BOARD.cancel(key, session_id() or "script")
    st.session_state.setdefault(_CANCELLED, set()).add(key)


def _say_failed(key: tuple, ticket: Ticket) -> None:
    st.error(str(ticket.error), icon=":material/cloud_off:")
    st.button("Try again", key=f"ndif.retry.{hash(key)}", on_click=BOARD.forget, args=(key,),
              icon=":material/refresh:")


def _wait(key: tuple, repo_id: str) -> None:
    """A waiting job, redrawn every POLL_S: its stage among received, queued, running and completed, the time
    it has waited against its limit, and a cancel button. Once it has ended the whole page draws again."""
    ticket = BOARD.get(key)
    if ticket is None or not ticket.active:
        st.rerun()  # completed, failed or cancelled: the page draws the outcome
    reached = STAGES.index(ticket.stage) if ticket.stage in STAGES else 0
    line = " → ".join(f"**{s}**" if i == reached else (s if i < reached else f":gray[{s}]")
                      for i, s in enumerate(STAGES))
    box = st.container(border=True)
    box.markdown(f":material/cloud_sync: NDIF job for {md(repo_id)}: {line}  \n"
                 f"{ticket.waited():.0f} s so far, at most {ticket.limit_s:.0f} s "
                 f"({len(ticket.waiters)} session{'s' if len(ticket.waiters) != 1 else ''} waiting on it)")
    box.button("Cancel", key=f"ndif.cancel.{hash(key)}", on_click=_cancel, args=(key,), icon=":material/cancel:")


def precision_note(sel: Selective) -> str | None:
    """What a figure of `sel` may claim, in a sentence; None for float32 values."""
    if sel.digits is None:
        return None
    kind = str(sel.dtype).removeprefix("torch.")
    return (f"Values came back from {sel.where} in {kind} (about {sel.digits} significant digits), so the "
            f"figures show no more than that; the job took {sel.seconds:.1f} s, queue and network included.")


def figure(x: float, digits: int | None, places: int = 3) -> str:
    """A value with no more digits than its precision: `places` decimals, or `digits` significant ones."""
    return f"{x:.{places}f}" if digits is None else f"{x:.{digits}g}"


def opened(repo_id: str, revision: str | None = None) -> RemoteModel | None:
    """The RemoteModel of `repo_id` if this process has opened it (nothing is fetched)."""
    with _lock:
        return _models.get((repo_id, revision))
