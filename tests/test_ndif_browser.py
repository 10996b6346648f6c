"""An NDIF model in a real browser: the app started with NDIF turned on and pointed at the NDIF-protocol server
of tests/ndif_fake.py (on 127.0.0.1, in this test's process, running jobs on tiny models), an "NDIF" model
picked by its link, and the Attention and Next token pages drawn once its jobs are done: the job's state shows
while it runs, and nothing raises."""
from __future__ import annotations

import pytest
from conftest import open_app, streamlit_server, wait_for_app
from ndif_fake import FakeNdif, Served, served_model, start, write_tiny

pytestmark = [pytest.mark.browser, pytest.mark.slow]

KEY = "ndif-browser-key-424242"
REPO = "meta-llama/Llama-3.1-8B"
CHART = "[data-testid='stPlotlyChart']"
EXCEPTION = "[data-testid='stException']"


@pytest.fixture(scope="module")
def ndif(tmp_path_factory):
    root = tmp_path_factory.mktemp("ndif-models")
    folder = root / REPO.replace("/", "--")
    write_tiny(folder, "llama")
    fake = FakeNdif({REPO: Served(REPO, served_model(folder))}, keys={KEY}, behaviour="slow:1.0")
    server = start(fake)
    yield fake, root
    server.shutdown()


@pytest.fixture(scope="module")
def ndif_app(ndif, tmp_path_factory):
    fake, root = ndif
    env = {"GLASSBOX_NDIF": "1", "GLASSBOX_NDIF_URL": fake.base, "GLASSBOX_NDIF_DIR": str(root),
           "NDIF_API_KEY": KEY}
    with streamlit_server(tmp_path_factory.mktemp("server") / "streamlit.log", env) as base:
        yield base


@pytest.fixture
def tab(browser):
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    t = context.new_page()
    t.set_default_timeout(60_000)
    yield t
    context.close()


def test_an_ndif_model_on_the_attention_and_next_token_pages(tab, ndif_app, ndif):
    fake, _ = ndif
    link = f"model=ndif:{REPO}&text=Once+upon+a+time+a+fox+found+a+ball."
    open_app(tab, f"{ndif_app}/Attention?{link}")
    tab.get_by_text("NDIF job for", exact=False).first.wait_for()  # the job's state, while it runs
    tab.get_by_text("Layer 0: all 4 heads", exact=False).first.wait_for(timeout=60_000)
    wait_for_app(tab)
    assert tab.locator(CHART).count() >= 3 and tab.locator(EXCEPTION).count() == 0
    assert tab.get_by_text("bfloat16", exact=False).count() >= 1
    assert "sends your text to 127.0.0.1" in tab.locator("[data-testid='stSidebar']").inner_text()

    open_app(tab, f"{ndif_app}/Next_token?{link}")
    tab.get_by_text("What the next token is drawn from", exact=False).first.wait_for(timeout=60_000)
    wait_for_app(tab)
    assert tab.locator(EXCEPTION).count() == 0
    assert len([r for r in fake.requests if r["path"] == "/request"]) == 2, "one job per page's request"
    assert all(r["key"] in (KEY, "") for r in fake.requests)
