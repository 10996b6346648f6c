"""The layout is the architecture: every module sits in a wing, and imports only run down the layers.

engine/model/ is the bottom and knows no other wing; generation/ runs on it; inspect/ and train/ sit on top.
engine/settings.py, below them all, is the one module outside a wing: every wing may read the settings, and
it imports nothing of the engine. engine/ never imports streamlit, ui/ or pages/; ui/ never imports pages/. The imports are read from the
source (ast), so a lazy import inside a function counts too.
"""
import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# What each engine wing may import from the engine (besides itself).
ENGINE_LAYERS = {
    "model": set(),
    "generation": {"model"},
    "inspect": {"model", "generation"},
    "train": {"model", "generation"},
}
UI_SHARED = {"__init__", "cache", "chips", "colours", "errors", "lru", "models", "pages", "plots", "runs", "server",
             "state", "text"}
ENGINE_LEAVES = {"settings.py"}  # engine/ modules below every wing: each imports only the standard library
UI_WINGS = {"tokens", "attention", "feedforward", "next_token", "train", "rlhf", "workshop"}


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
    assert wings == UI_WINGS
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
    code = ("import sys, engine, engine.model, engine.generation, engine.inspect, engine.train, "
            "engine.train.cli; print('streamlit' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
