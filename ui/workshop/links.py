"""Links to the exact view: the address bar always holds the view, and opening it elsewhere shows the same.

The URL's query holds the view in ui.workshop.views' vocabulary, plus `tour` (the tour's step) and `present`
(presenter mode). Every run writes the session's view into the URL (`sync_url`; ui.state.remembered
tells it too, so a choice made inside a fragment updates the URL at once). A run that finds a URL it did not write
(a link opened, a tour step) applies it first (`arrive`).

The text travels as `text=` when that is shortest, or zlib-compressed as `tz=` (base64url). A link stays
within LINK_TEXT_CHARS characters for the text: a longer text is cut to what fits, and the link control says
so. A value that cannot be used (a tampered link, a model this server lacks) leaves that setting at its
default with one line on the page, never an exception.
"""
from __future__ import annotations

import base64
import binascii
import re
import zlib
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote_plus

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from ..page import Page
from ..registry import BY_ID
from ..state import MAX_CHARS, PAGE, get_text, presenting, set_presenting
from .tour import current_step_number, enter, step_of_param, take_pending
from .views import Applied, Unusable, apply_view, read_view

TEXT, PACKED = "text", "tz"  # the text as it is, or compressed
TOUR, PRESENT = "tour", "present"
LINK_TEXT_CHARS = 1_800  # at most this many URL characters for the text: links stay near 2,000, which every
#                          browser, chat app and QR code takes
WRITTEN = "workshop.url"  # session key: the query this session last wrote
WROTE = "workshop.urls"  # session key: the last WROTE_KEPT queries it wrote (a rerun may carry one the browser
#                         had not yet replaced: it is this session's own, not a link to apply)
WROTE_KEPT = 16
NOTE = "workshop.note"  # session key: the line about a link's unusable values, shown once
# The link as the address bar holds it, without presenter mode, in a box to select and a button that copies it
# (the clipboard API where the page is a secure context, the older copy command elsewhere, e.g. plain http on
# a venue's network).
COPY_HTML = """
<div id="ELEMENT" class="gb-link">
  <input class="gb-link-url" type="text" readonly aria-label="Link to this view"
         style="width: 100%; font: 0.85rem ui-monospace, Menlo, Consolas, monospace; padding: 0.3rem;">
  <button type="button" class="gb-link-copy" style="margin-top: 0.4rem; padding: 0.2rem 0.9rem;">Copy link</button>
  <span class="gb-link-said" aria-live="polite" style="margin-left: 0.6rem;"></span>
</div>
<script>
(() => {
  const root = document.getElementById("ELEMENT");
  if (!root || root.dataset.ready) return;
  root.dataset.ready = "1";
  const box = root.querySelector("input"), said = root.querySelector(".gb-link-said");
  const link = () => { const u = new URL(window.location.href); u.searchParams.delete("present"); return u.href; };
  const fill = () => { if (document.activeElement !== box) box.value = link(); };
  fill();
  const timer = setInterval(() => document.body.contains(root) ? fill() : clearInterval(timer), 500);
  box.addEventListener("focus", () => box.select());
  root.querySelector("button").addEventListener("click", async () => {
    box.value = link();
    try { await navigator.clipboard.writeText(box.value); }
    catch (e) { box.select(); document.execCommand("copy"); }
    said.textContent = "Copied";
  });
})();
</script>
"""


@dataclass(frozen=True)
class PackedText:
    name: str  # TEXT or PACKED
    value: str
    chars: int  # characters of the text the link carries


def _pack(text: str) -> str:
    return base64.urlsafe_b64encode(zlib.compress(text.encode("utf-8"), 9)).decode("ascii").rstrip("=")


def _shortest(text: str) -> tuple[str, str, int]:
    plain, packed = quote_plus(text), _pack(text)
    return (TEXT, text, len(plain)) if len(plain) <= len(packed) else (PACKED, packed, len(packed))


@lru_cache(maxsize=64)  # a pure function of the text, asked for on every run and widget
def pack_text(text: str) -> PackedText:
    """The text as one link parameter, as it is or compressed, whichever is shorter; cut to the longest start
    that fits LINK_TEXT_CHARS."""
    name, value, size = _shortest(text)
    if size <= LINK_TEXT_CHARS:
        return PackedText(name, value, len(text))
    lo, hi = 0, len(text)  # the longest prefix that fits: lo fits, hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if _shortest(text[:mid])[2] <= LINK_TEXT_CHARS else (lo, mid)
    name, value, _ = _shortest(text[:lo])
    return PackedText(name, value, lo)


def unpack_text(value: str) -> str:
    """The text of a `tz=` value. Raises Unusable for anything that is not one (a zip bomb included)."""
    try:
        data = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        inflate = zlib.decompressobj()
        raw = inflate.decompress(data, 4 * MAX_CHARS + 4)  # UTF-8 is at most 4 bytes a character
        if inflate.unconsumed_tail or not inflate.eof:
            raise Unusable("not a text this app wrote")
        return raw.decode("utf-8")
    except (binascii.Error, ValueError, zlib.error):
        raise Unusable("not a text this app wrote") from None


def url_params(view: dict[str, str]) -> dict[str, str]:
    """A view as a URL query: the text packed (`text=` or `tz=`), the rest as it is."""
    view = dict(view)
    text = view.pop(TEXT, None)
    if text is None:
        return view
    packed = pack_text(text)
    return {packed.name: packed.value, **view}


def link_params(page: Page) -> dict[str, str]:
    """The URL query of the session's view of `page`, the tour's step and presenter mode included."""
    params = url_params(read_view(page))
    step = current_step_number()
    if step is not None:
        params[TOUR] = str(step)
    if presenting():
        params[PRESENT] = "1"
    return params


def sync_url() -> None:
    """Write the session's view into the URL when it changed (cheap when it did not)."""
    page = BY_ID.get(st.session_state.get(PAGE))
    if page is None:
        return
    want = link_params(page)
    if st.session_state.get(WRITTEN) != want:
        st.session_state[WRITTEN] = want
        wrote = st.session_state.setdefault(WROTE, [])
        wrote.append(want)
        del wrote[:-WROTE_KEPT]
        if st.query_params.to_dict() != want:
            st.query_params.from_dict(want)


def arrive(page: Page) -> None:
    """Before the page draws anything: apply a URL this session did not write (a link opened on a fresh
    session, a tour step), or the step Back / Next / Start asked for."""
    step = take_pending()
    if step is not None:
        if step.page.id != page.id:  # the step's page opens with the step as its link, applied there
            st.switch_page(step.page.script, query_params={**url_params(step.fixed_view), TOUR: str(step.number)})
        _keep_note(enter(step))
        return
    incoming = st.query_params.to_dict()
    if not incoming or incoming == st.session_state.get(WRITTEN) or incoming in st.session_state.get(WROTE, []):
        return
    applied = Applied()
    if PRESENT in incoming:
        if incoming[PRESENT] in ("0", "1"):
            set_presenting(incoming[PRESENT] == "1")
        else:
            applied.unusable.append((PRESENT, incoming[PRESENT], "use 1 or 0"))
    view = dict(incoming)
    if PACKED in view:
        try:
            view[TEXT] = unpack_text(view.pop(PACKED))
        except Unusable as e:
            applied.unusable.append((PACKED, incoming[PACKED], str(e)))
    if TOUR in incoming:
        try:
            step = step_of_param(incoming[TOUR])
        except Unusable as e:
            applied.unusable.append((TOUR, incoming[TOUR], str(e)))
        else:
            if step.page.id != page.id:  # a step lives on its own page: the same link opens there
                st.switch_page(step.page.script, query_params=incoming)
            enter(step, applied)  # the step's view, then the link's own values over it
    st.session_state[WRITTEN] = incoming  # applied once
    _keep_note(apply_view(page, view, applied))


def _keep_note(applied: Applied) -> None:
    if applied.note():
        st.session_state[NOTE] = applied.note()


def incoming_present() -> bool | None:
    """What a link this session has not applied yet says about presenter mode (None: nothing)."""
    incoming = st.query_params.to_dict()
    if incoming == st.session_state.get(WRITTEN) or incoming.get(PRESENT) not in ("0", "1"):
        return None
    return incoming[PRESENT] == "1"


def show_note() -> None:
    """The one line about a link's unusable values, once."""
    note = st.session_state.pop(NOTE, None)
    if note:
        st.info(note, icon=":material/link_off:")


def link_control(key: str) -> None:
    """A "Link to this view" popover: the link, a Copy button, and what the link holds.

    The link is read from the address bar in the browser, which `sync_url` keeps current even when only a
    fragment reran (and this popover with it did not); presenter mode is left out of it.
    """
    with st.popover("Link to this view", icon=":material/link:", key=key,
                    help="A link that opens this page as you see it now, on any browser."):
        element = "gb-link-" + re.sub(r"[^a-z0-9]+", "-", key.lower())
        st.html(COPY_HTML.replace("ELEMENT", element), unsafe_allow_javascript=True)
        st.caption("It holds the page, your text, the model and this page's settings, and opens them on any "
                   "browser. Presenter mode is left out: add `present=1` for a projector.")
        text = get_text()
        packed = pack_text(text)
        if packed.chars < len(text):
            st.warning(f"Your text has {len(text):,} characters; the link carries the first {packed.chars:,} "
                       f"(a link stays under about {LINK_TEXT_CHARS + 200:,} characters).",
                       icon=":material/content_cut:")
        elif packed.name == PACKED:
            st.caption("The text is compressed in the link (`tz=`), so a long text still makes a short link.")


def view_link(page: Page, view: dict[str, str], label: str) -> None:
    """A link to `page` showing `view` (a takeaway's, a glossary term's); a plain line where the running app
    has no such page (a page script run on its own, as in tests)."""
    try:
        st.page_link(page.script, label=label, icon=":material/visibility:", query_params=url_params(view))
    except StreamlitPageNotFoundError:
        st.caption(label)


