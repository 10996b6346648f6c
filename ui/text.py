"""Token text made safe for where it is shown: Markdown (widget labels too), Plotly labels, CSV cells.

Streamlit renders Markdown in st.markdown, captions and messages, so a token such as `**` or `$` would format
the page; a spreadsheet runs a CSV cell that starts with `=`. Every page escapes through here.
"""
import html
import re

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$:&])")


def md(text: str) -> str:
    """Token text made literal wherever Streamlit renders Markdown: st.markdown, captions, messages, widget
    labels, metric values and the options of select_slider, radio, pills and segmented_control. Every
    Markdown and Streamlit directive character (`*`, `_`, `$`, `:`, `[`...) is backslash-escaped, so a token
    can never format the page. Not for selectbox or multiselect options, which Streamlit shows as plain text
    (an escape would show as a stray backslash)."""
    return _MARKDOWN.sub(r"\\\1", text)


def csv_text(value: str) -> str:
    """A token for a CSV cell: a leading = + - @ would start a spreadsheet formula, so it gets a quote."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def plotly_text(text: str) -> str:
    """Token text for a Plotly label or hover: Plotly reads `<` as the start of a tag and decodes only &amp;,
    &lt;, &gt; and numeric entities, so those three are escaped and a quote is left as it is (an escaped
    quote would show as "&quot;")."""
    return html.escape(text, quote=False)
