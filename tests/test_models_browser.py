"""In Chromium: a server told about model folders (GLASSBOX_MODELS_DIR) offers them in the sidebar; picking a
GPT-2-family folder and a Llama-family folder, every page opens on it with real values and no exception."""
from __future__ import annotations

import pytest

from conftest import open_app, streamlit_server, wait_for_app
from engine_fixtures import save_server_models

pytestmark = pytest.mark.browser
SIDEBAR = "[data-testid='stSidebar']"
EXCEPTION = "[data-testid='stException']"
ERROR = "[data-testid='stAlertContentError']"
PAGES = ["Tokens and vectors", "Attention", "Feed-forward", "Next token", "Train", "Pre-training vs RLHF"]


@pytest.fixture(scope="module")
def models_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("server-models")
    save_server_models(root, families=("llama",))
    env = {"GLASSBOX_MODELS_DIR": str(root), "GLASSBOX_HUB": "0"}
    with streamlit_server(tmp_path_factory.mktemp("models-log") / "streamlit.log", env) as base:
        yield base


@pytest.mark.parametrize("name, family", [("tiny-gpt2", "GPT-2"), ("tiny-llama", "Llama")])
def test_every_page_on_a_server_model(browser, models_server, name, family):
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        open_app(page, models_server)
        page.locator(f"{SIDEBAR} [data-testid='stSelectbox']").first.click()
        page.get_by_role("option", name=f"{name} ·").click()
        wait_for_app(page)
        sidebar = page.locator(SIDEBAR)
        assert f"{family} architecture" in sidebar.inner_text()
        for title in PAGES:
            page.locator(f"{SIDEBAR} a").filter(has_text=title).first.click()
            wait_for_app(page)
            assert page.locator(EXCEPTION).count() == 0, f"{title}: {page.locator(EXCEPTION).first.inner_text()}"
            assert page.locator(ERROR).count() == 0, f"{title}: {page.locator(ERROR).first.inner_text()}"
            assert f"{family} architecture" in sidebar.inner_text(), f"{title}: the model stayed picked"
        assert page.locator(".js-plotly-plot").count() > 0, "the last page drew real figures"
    finally:
        context.close()
