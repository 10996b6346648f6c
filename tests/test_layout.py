"""The layout is the architecture: every module sits in a wing, and imports only run down the layers.

engine/model/ is the bottom and knows no other wing; generation/ runs on it; inspect/ and train/ sit on top;
intervene/ on model, generation and inspect; remote/ (models NDIF runs) sits on model/ alone.
engine/settings.py, below them all, is the one module outside a wing: every wing may read the settings, and
it imports nothing of the engine. engine/ never imports streamlit, ui/ or pages/; ui/ never imports pages/. ui/
is a strict stack (UI_LEVELS, bottom to top): leaves -> shared state, glossary, plots, chips, view vocabulary ->
page -> wings -> registry -> workshop -> frame -> the face. No ui module imports one above it, no wing another
wing, nothing the face, and no import circle. The imports are read from the source (ast), so a lazy import
inside a function counts too.
"""
import ast
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# What each engine wing may import from the engine (besides itself).
ENGINE_LAYERS = {
    "model": set(),
    "generation": {"model"},
    "inspect": {"model", "generation"},
    "train": {"model", "generation"},
    "remote": {"model"},  # models that run elsewhere (NDIF through nnsight): a source of models beside model/'s
    "intervene": {"model", "generation", "inspect"},
}
ENGINE_LEAVES = {"settings.py"}  # engine/ modules below every wing: each imports only the standard library
UI_WINGS = {"tokens", "attention", "feedforward", "next_token", "intervene", "train", "rlhf", "scale", "room"}
# ui/, bottom to top: a module imports only from its own level or below (a wing only from itself and below).
UI_LEVELS = (
    # leaves: know no page
    {"errors", "text", "colours", "server", "models", "cache", "lru", "ndif", "qr", "memory"},
    # shared by the pages, know no page
    {"terms", "examples", "state", "inputs", "plots", "patterns", "chips", "view", "runs", "views", "live_text"},
    {"page"},  # the Page declaration
    UI_WINGS,  # one wing per page
    {"registry"},  # the one list of pages
    {"workshop"},  # links, the tour, presenter mode, the glossary page
    {"frame"},  # page setup, sidebar, text box, page links
    {"__init__"},  # the face pages import
)
UI_SHARED = set().union(*UI_LEVELS) - UI_WINGS - {"workshop"}
UI_SHARED_PACKAGES = {"views"}  # shared modules that are folders: the views drawn in the browser (ui/views/)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module `path` imports, as absolute dotted names (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            found.add(target)
            # `from engine import neurons` imports a module too
            found.update(f"{target}.{a.name}" for a in node.names)
    return found


def sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def test_every_engine_module_is_in_a_wing():
    loose = {p.name for p in (ROOT / "engine").glob("*.py") if p.name != "__init__.py"} - ENGINE_LEAVES
    assert loose == set(), f"engine/ modules outside a wing: {sorted(loose)}"
    wings = {p.name for p in (ROOT / "engine").iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert wings == set(ENGINE_LAYERS)
    for wing in wings:
        assert (ROOT / "engine" / wing / "__init__.py").exists(), f"engine/{wing}/ needs an __init__.py face"


def test_every_ui_module_is_shared_or_in_a_wing():
    loose = {p.stem for p in (ROOT / "ui").glob("*.py")}
    assert loose <= UI_SHARED, f"ui/ modules that belong in a page's wing: {sorted(loose - UI_SHARED)}"
    wings = {p.name for p in (ROOT / "ui").iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert wings == UI_WINGS | {"workshop"} | UI_SHARED_PACKAGES
    for wing in wings:
        assert (ROOT / "ui" / wing / "__init__.py").exists(), f"ui/{wing}/ needs an __init__.py face"


@pytest.mark.parametrize("path", sources("engine"), ids=lambda p: str(p.relative_to(ROOT)))
def test_engine_imports_run_down_the_layers(path):
    wing = path.relative_to(ROOT / "engine").parts[0]
    allowed = ENGINE_LAYERS.get(wing.removesuffix(".py"), set(ENGINE_LAYERS))  # engine/__init__.py: any wing
    for name in imports(path):
        top = name.split(".")[0]
        assert top not in ("streamlit", "ui", "pages"), f"{path.name} imports {name}: the engine knows no UI"
        if top == "engine" and name.count(".") >= 1 and wing != "__init__.py":
            other = name.split(".")[1]
            if other in ENGINE_LAYERS and other != wing:
                assert other in allowed, f"engine/{wing} imports {name}: {wing}/ may use only {sorted(allowed)}"


@pytest.mark.parametrize("path", [*sources("ui"), *sources("pages"), ROOT / "app.py"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_ui_and_pages_never_import_pages(path):
    for name in imports(path):
        assert name.split(".")[0] != "pages", f"{path.name} imports {name}: pages are the top, nothing imports them"


def ui_unit(module: str) -> str:
    """The stack unit of a ui module: its wing, or its own name for a shared module ("__init__" for the face)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def ui_level(module: str) -> int:
    unit = ui_unit(module)
    return next(i for i, level in enumerate(UI_LEVELS) if unit in level)


@cache
def ui_graph() -> dict[str, set[str]]:
    """Every ui module -> the ui modules it imports (names that are not modules, e.g. `from .x import f`'s
    `ui.x.f`, are dropped)."""
    paths = {module_name(p): p for p in sources("ui")}
    return {m: {d for d in imports(p) if d in paths and d != m} for m, p in paths.items()}


@pytest.mark.parametrize("path", sources("ui"), ids=lambda p: str(p.relative_to(ROOT)))
def test_ui_imports_run_down_the_stack(path):
    me = module_name(path)
    for dep in ui_graph()[me]:
        assert dep != "ui" or me == "ui", (
            f"{me} imports the face `ui` (write `from ..state import x`, not `from .. import state`)")
        if dep == "ui":
            continue
        assert ui_level(dep) <= ui_level(me), (
            f"{me} imports {dep}, which sits above it in ui's stack ({ui_unit(dep)} over {ui_unit(me)})")
        if ui_unit(dep) in UI_WINGS and ui_unit(dep) != ui_unit(me):
            assert me == "ui.registry" and dep == f"ui.{ui_unit(dep)}", (
                f"{me} imports {dep}: only its own wing and the registry (a wing's face) may; move what both "
                "need down the stack")


def test_ui_has_no_import_circle():
    graph = ui_graph()
    index, low, stack, on, circles = {}, {}, [], set(), []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert circles == [], f"ui modules that import each other in a circle: {circles}"


def test_ui_wings_do_not_lean_on_each_other_for_shared_helpers():
    """A page's wing may reuse another page's figure (the Train page's time-lapse draws attention heads),
    but text escaping, CSV cells and the like live in the shared ui/ modules."""
    shared_names = {"md", "plotly_text", "csv_text"}
    for path in sources("ui"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and any(w in node.module for w in UI_WINGS):
                if node.level == 1 and path.parent.name in UI_WINGS:
                    continue  # inside its own wing
                names = {a.name for a in node.names} & shared_names
                assert not names, f"{path.relative_to(ROOT)} takes {names} from a page's wing; import from ui.text"


@pytest.mark.parametrize("name", sorted(ENGINE_LEAVES))
def test_engine_leaves_import_only_the_standard_library(name):
    for imported in imports(ROOT / "engine" / name):
        top = imported.split(".")[0]
        assert top in sys.stdlib_module_names or top == "__future__", f"engine/{name} imports {imported}"


def test_engine_never_loads_streamlit_at_run_time():
    """Importing the whole engine (every wing) brings no streamlit into the process."""
    import subprocess
    code = ("import sys, engine, engine.model, engine.generation, engine.inspect, engine.train, engine.intervene, "
            "engine.train.cli, engine.remote; print('streamlit' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
