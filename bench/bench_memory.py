"""Memory given back: rounds of browser sessions that each upload a model at the upload caps and look inside it,
then close, against a Streamlit server running in this process, with the server's RSS measured before, at the
peak and after every round, and what still holds memory counted by type.

    python bench/bench_memory.py [--rounds 3] [--sessions 4] [--ttl 20] [--diagnose]
    MALLOC_ARENA_MAX=2 python bench/bench_memory.py    # glibc's arenas capped, as the README's deploy notes say

Each session is a real Chromium tab (Playwright, one at a time to spare the CPU; the sessions of a round stay
open together): it opens the Train page, uploads a model zip at the caps (up to the 256 MB trace budget: 24
layers would exceed it at 1,024 tokens of context, so as many as fit, 22, of 1 head, 1,024 tokens, a vocabulary
of about 8,000), picks it, and on the Attention page looks inside two texts of the whole context (two traces of
~254 MB: what one session's trace cache may hold). Then every tab of the round closes. Streamlit keeps a closed tab's
session for server.disconnectedSessionTTL (shortened here with --ttl; 120 s by default) so that a dropped
connection can resume it; after that the memory must come back.

The server runs in this process (streamlit.web.bootstrap), so besides RSS the bench can count what a closed
session leaves behind: live Trace objects and their bytes, models, Streamlit's stored sessions, uploaded files
and media (download) files, and the server-wide budget's ledger (ui/memory.py). --diagnose prints the referrer
chain of anything a closed session still holds. Sends traffic only to 127.0.0.1.
"""
from __future__ import annotations

import argparse
import gc
import os
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
STORIES = Path("/work/shared/data/tinystories/train-000.txt")  # the shared corpus (its README: source, licence)
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
CONNECTED = "[data-testid='stApp'][data-test-connection-state='CONNECTED']"
SIDEBAR = "[data-testid='stSidebar']"
MB = 2**20


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / MB


def cap_zip(folder: Path) -> tuple[Path, list[str]]:
    """A model zip at the upload caps (within the trace budget), and two texts that fill its context."""
    from engine import GPT, GPTConfig, train_bpe
    from engine.model.cost import TraceBudget, config_cost
    from engine.train.bundle import export_zip
    text = STORIES.read_text()[:3_000_000] if STORIES.is_file() else ("Once upon a time, a fox ran. " * 20_000)
    tok = train_bpe([text[i:i + 10_000] for i in range(0, len(text), 10_000)], 8192)
    budget = TraceBudget.from_env()
    layers = max(n for n in range(1, 25) if config_cost(GPTConfig(block_size=1024, vocab_size=len(tok), n_layer=n,
                                                                  n_head=1, n_embd=32)).bytes <= budget.max_bytes)
    import torch
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=1024, vocab_size=len(tok), n_layer=layers, n_head=1, n_embd=32)).eval()
    path = folder / "cap-model.zip"
    path.write_bytes(export_zip(model, tok, "cap-model"))
    texts = [text[200_000 + 6_000 * i: 200_000 + 6_000 * i + 4_900] for i in range(2)]
    print(f"model at the caps: {layers} layers x 1 head, width 32, 1,024 tokens of context, vocabulary "
          f"{len(tok):,}; zip {path.stat().st_size / MB:.1f} MB; one trace of 1,024 tokens "
          f"{config_cost(model.config).bytes / MB:.0f} MB")
    return path, texts


# --- what is held, counted from inside the server's process -------------------------------------------------

def holdings() -> dict[str, float]:
    from streamlit.runtime import Runtime

    from engine import GPT, Trace
    from engine.model.hf import HFModel
    gc.collect()
    traces = [o for o in gc.get_objects() if isinstance(o, Trace)]
    models = [o for o in gc.get_objects() if isinstance(o, (GPT, HFModel))]
    out = {"traces": len(traces), "trace MB": sum(t.nbytes for t in traces) / MB, "models": len(models)}
    if Runtime.exists():
        rt = Runtime.instance()
        mgr = rt._session_mgr  # noqa: SLF001 - counted, not changed
        out["stored sessions"] = len(mgr._session_storage._cache._data)  # noqa: SLF001
        out["active sessions"] = len(mgr.list_active_sessions())
        files = rt.uploaded_file_mgr.file_storage
        out["uploads MB"] = sum(len(f.data) for s in files.values() for f in s.values()) / MB
        media = rt.media_file_mgr._storage._files_by_id  # noqa: SLF001
        out["media MB"] = sum(len(f.content) for f in media.values()) / MB
    try:
        from ui import memory
        out["budget MB"] = memory.held_bytes() / MB  # the server-wide budget's count
    except (ImportError, AttributeError):
        pass
    return out


def referrer_chain(obj, skip: list, depth: int = 10) -> list[str]:
    """One chain of what holds `obj`, outwards, by type (a dict by its first keys, a frame by its code); `skip`:
    the caller's own list of such objects."""
    chain, here, seen = [], obj, {id(obj), id(skip)}
    for _ in range(depth):
        found = gc.get_referrers(here)
        seen.add(id(found))
        refs = [r for r in found if id(r) not in seen and r is not chain
                and not (isinstance(r, list) and len(r) > 1000)]  # gc.get_objects()'s own lists
        seen.add(id(refs))
        if not refs:
            break
        here = refs[0]
        seen.add(id(here))
        if isinstance(here, dict):
            chain.append(f"dict{[k for k in list(here)[:5]]}")
        elif type(here).__name__ == "frame":
            chain.append(f"frame {here.f_code.co_name} ({here.f_code.co_filename.rsplit('/', 2)[-1]})")
        elif isinstance(here, (list, tuple)):
            chain.append(f"{type(here).__name__}[{len(here)}]")
        else:
            chain.append(type(here).__name__)
    return chain


# --- the sessions ---------------------------------------------------------------------------------------------

def wait_app(tab) -> None:
    tab.wait_for_timeout(300)
    tab.wait_for_selector(CONNECTED, timeout=120_000)
    tab.wait_for_selector(IDLE, timeout=300_000)


def one_session(browser, base: str, zip_path: Path, texts: list[str]):
    """Open a tab, upload the model, look inside both texts with it; the tab stays open (returned)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(300_000)
    tab.goto(f"{base}/Train")
    wait_app(tab)
    tab.get_by_text("Load a model you trained before (.zip)").click()
    tab.locator("input[type='file']").set_input_files(str(zip_path))
    tab.wait_for_selector("text=as uploaded model", timeout=300_000)
    wait_app(tab)
    tab.locator(f"{SIDEBAR} a", has_text="Attention").first.click()
    wait_app(tab)
    tab.locator(f"{SIDEBAR} [data-testid='stSelectbox']").first.click()
    tab.get_by_role("option", name="uploaded model (yours, this session only)").click()
    wait_app(tab)
    for text in texts:
        box = tab.get_by_label("Your text")
        box.fill(text)
        box.press("Control+Enter")
        wait_app(tab)
    errors = tab.locator("[data-testid='stException'], [data-testid='stAlertContentError']").count()
    return context, errors


def drive(base: str, args, zip_path: Path, texts: list[str], report: list) -> None:
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        options = {"executable_path": CHROMIUM} if Path(CHROMIUM).exists() else {}
        browser = p.chromium.launch(args=CHROMIUM_ARGS, **options)
        # Warm up: one plain visit loads the built-in model and every page's modules, then settles.
        context = browser.new_context()
        tab = context.new_page()
        tab.goto(f"{base}/Attention")
        wait_app(tab)
        context.close()
        time.sleep(args.ttl + args.settle)
        start = holdings() | {"rss MB": rss_mb()}
        report.append(("start", start))
        print(f"start: {fmt(start)}", flush=True)
        for r in range(1, args.rounds + 1):
            open_tabs, peak, errors = [], 0.0, 0
            for s in range(args.sessions):
                context, bad = one_session(browser, base, zip_path, texts)
                open_tabs.append(context)
                errors += bad
                peak = max(peak, rss_mb())
                print(f"  round {r} session {s + 1}: rss {rss_mb():,.0f} MB", flush=True)
            during = holdings() | {"rss MB": rss_mb(), "peak MB": peak, "errors": errors}
            for context in open_tabs:
                context.close()
            time.sleep(args.ttl + args.settle)  # Streamlit keeps a closed tab's session this long
            after = holdings() | {"rss MB": rss_mb()}
            report.append((f"round {r}", after))
            print(f"round {r}: open {fmt(during)}\n         closed {fmt(after)}", flush=True)
            if args.diagnose:
                diagnose()
        browser.close()


def diagnose() -> None:
    from streamlit.runtime import Runtime
    from streamlit.runtime.caching.cache_resource_api import ResourceCache

    from ui import memory
    before = rss_mb()
    Runtime.instance()._session_mgr._session_storage._cache.expire()  # noqa: SLF001 - what lingers, measured
    gc.collect()
    memory.trim()
    print(f"    Streamlit's expired sessions dropped: rss {before:,.0f} -> {rss_mb():,.0f} MB")

    from engine import GPT, Trace
    gc.collect()
    for cache in [o for o in gc.get_objects() if isinstance(o, ResourceCache)]:
        held = [r.value for r in list(cache._mem_cache._data.values())]  # noqa: SLF001 - counted only
        traces = [v for v in held if isinstance(v, Trace)]
        if traces:
            print(f"    st.cache_resource {cache.display_name}: {len(traces)} traces, "
                  f"{sum(t.nbytes for t in traces) / MB:,.0f} MB")
    for kind in (Trace, GPT):
        found = [o for o in gc.get_objects() if isinstance(o, kind)
                 and (kind is not Trace or o.nbytes > 16 * MB)]  # the default model's small shared ones aside
        for i in range(min(4, len(found))):
            print(f"    a {kind.__name__} is held by: {' <- '.join(referrer_chain(found[i], found))}")
        del found


def fmt(d: dict) -> str:
    return ", ".join(f"{k} {v:,.0f}" if isinstance(v, float) else f"{k} {v}" for k, v in d.items())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sessions", type=int, default=4)
    ap.add_argument("--ttl", type=int, default=20, help="server.disconnectedSessionTTL (Streamlit's default: 120)")
    ap.add_argument("--settle", type=int, default=25, help="seconds after the TTL before measuring")
    ap.add_argument("--diagnose", action="store_true")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} (2 cores here); MALLOC_ARENA_MAX="
          f"{os.environ.get('MALLOC_ARENA_MAX', 'unset')}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="glassbox-bench-memory-"))
    zip_path, texts = cap_zip(tmp)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    report: list = []

    def driver() -> None:
        try:
            for _ in range(240):
                try:
                    with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2):
                        break
                except OSError:
                    time.sleep(0.5)
            drive(base, args, zip_path, texts, report)
            first, last = report[0][1]["rss MB"], report[-1][1]["rss MB"]
            print(f"\nRSS: {first:,.0f} MB at the start, {last:,.0f} MB after {args.rounds} rounds of "
                  f"{args.sessions} sessions closed: {last / first:.2f}x the start", flush=True)
        finally:
            os._exit(0)  # the server's loop runs in the main thread; this ends both

    threading.Thread(target=driver, daemon=True).start()
    os.chdir(ROOT)
    from streamlit.web import bootstrap
    flags = {"server_port": port, "server_address": "127.0.0.1", "server_headless": True,
             "server_disconnectedSessionTTL": args.ttl, "server_fileWatcherType": "none",
             "browser_gatherUsageStats": False}
    bootstrap.load_config_options(flags)
    bootstrap.run(str(ROOT / "app.py"), False, [], flags)


if __name__ == "__main__":
    main()
