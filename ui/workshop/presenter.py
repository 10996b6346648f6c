"""Presenter mode, for a projector: large type, high contrast, the sidebar and secondary controls folded away,
figures sized to the screen, and each tour step's main figure brought into view.

On with the sidebar's toggle or `?present=1`; off with the same toggle, the "Leave presenter mode" button on
the page, or `?present=0`. Every page keeps all its controls: the sidebar opens with its arrow, the folded text
box with a click. Figures are at most ui.plots.PRESENTER_FIGURE_PX tall (`ui.plots.fitted`), so each fits under
the tour's panel, which stays on screen, on a 1280x720 projector.

The one script (offline, like everything here) scrolls a tour step's main figure into view once, when the
step is entered and the page has finished drawing.
"""
from __future__ import annotations

import json
from contextlib import AbstractContextManager, nullcontext

import streamlit as st

from ..state import presenting, set_presenting, widget_key
# The panel stays on screen as the page scrolls: sticky on the wrapper Streamlit puts around the container.
PANEL_CSS = """
div:has(> .st-key-gb_tour) { position: sticky; top: 3.9rem; z-index: 990; box-shadow: 0 -1.2rem 0 0 #fff; }
.st-key-gb_tour { background: #fff; padding-top: 0.6rem; padding-bottom: 0.6rem; }
.st-key-gb_tour .gb-tour-title { font-size: 1.3rem; font-weight: 700; line-height: 1.25; }
.st-key-gb_tour [data-testid="stProgress"] p { font-size: 0.85rem; }
"""
# 21.5 px: Streamlit's Plotly theme draws figure text at 0.75 rem, whatever size a figure sets, so 16.1 px here
# (ui.plots.PRESENTER_FONT_PX; 21 px gave 15.75 px).
PRESENTER_CSS = """
html { font-size: 21.5px; }
[data-testid="stHeader"] { background: transparent; pointer-events: none; }
[data-testid="stHeader"] button { pointer-events: auto; }
[data-testid="stToolbar"] { display: none; }
[data-testid="stMainBlockContainer"] { padding-top: 0.6rem; padding-bottom: 2rem; max-width: none; }
[data-testid="stMain"] [data-testid="stMarkdownContainer"] :is(p, li) { color: #000; }
[data-testid="stMain"] button [data-testid="stMarkdownContainer"] p { color: inherit; }
[data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] * { color: #1a1a1a !important; }
[data-testid="stMain"] a { color: #004c7a; text-decoration: underline; }
.modebar-container { display: none !important; }
div:has(> .st-key-gb_tour) { top: 0; }
.st-key-gb_tour { border: 3px solid #000 !important; border-radius: 6px; }
.st-key-gb_tour [data-testid="stMarkdownContainer"] p { font-size: 0.95rem; line-height: 1.4; }
.st-key-gb_takeaways [data-testid="stMarkdownContainer"] p { font-size: 0.8rem; line-height: 1.35; }
"""
# Scroll a step's main figure into view once, after the page has finished drawing, below the tour's panel.
FOCUS_JS = """
(() => {
  const selector = %s, token = %s;
  if (window.__gbFocus === token) return;
  window.__gbFocus = token;
  let tries = 0, done = 0;
  const timer = setInterval(() => {
    const app = document.querySelector('[data-testid="stApp"]');
    const el = document.querySelector(selector);
    if (++tries > 240 || window.__gbFocus !== token) return clearInterval(timer);
    if (!el || el.getBoundingClientRect().height < 20 || !app || app.dataset.testScriptState !== 'notRunning') return;
    const bar = document.querySelector('.st-key-gb_tour');
    const top = bar ? bar.getBoundingClientRect().bottom : 0;
    const box = el.getBoundingClientRect();
    // The heading just above the figure comes along when both fit under the panel: a figure without its
    // heading reads as a figure without a name.
    const heads = Array.from(document.querySelectorAll('[data-testid="stMain"] :is(h1, h2, h3)')).filter(
      h => !h.closest('.st-key-gb_tour') && (h.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING));
    const head = heads.length ? heads[heads.length - 1] : null;
    const fits = head && box.bottom - head.getBoundingClientRect().top <= window.innerHeight - Math.max(0, top) - 16;
    const target = fits ? head : el;
    const start = target.getBoundingClientRect().top;
    if (start < top || box.bottom > window.innerHeight) {
      target.style.scrollMarginTop = (Math.max(0, top) + 8) + 'px';
      target.scrollIntoView({block: 'start'});
    }
    if (++done >= 3) clearInterval(timer);  // again after figures are fitted and late elements land
  }, 350);
})();
"""


def _sync_toggle(key: str) -> None:
    set_presenting(bool(st.session_state[key]))


def toggle() -> None:
    """The sidebar's switch (a key per page, synced to ui.state.PRESENTING like the text box)."""
    key = widget_key("present")
    st.session_state[key] = presenting()
    st.toggle("Presenter mode", key=key, on_change=_sync_toggle, args=(key,),
              help="For a projector: large type, high contrast, the sidebar folded away and figures fitted to "
                   "the screen. The link parameter present=1 turns it on.")


def leave_button() -> None:
    st.button("Leave presenter mode", icon=":material/close_fullscreen:", type="tertiary",
              key=widget_key("present_off"), on_click=set_presenting, args=(False,))


def styles() -> None:
    """The tour panel's style always; presenter mode's styles when it is on."""
    css = PANEL_CSS + (PRESENTER_CSS if presenting() else "")
    st.html(f"<style>{css}</style>")


def folded(label: str) -> AbstractContextManager:
    """A secondary control's container: an expander in presenter mode, the page itself otherwise."""
    return st.expander(label, icon=":material/edit_note:") if presenting() else nullcontext()


def focus(selector: str, token: int) -> None:
    """Bring the element `selector` into view once per `token` (a step entered)."""
    st.html(f"<script>{FOCUS_JS % (json.dumps(selector), json.dumps(token))}</script>",
            unsafe_allow_javascript=True)
