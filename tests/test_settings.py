"""Every GLASSBOX_* variable (engine/settings.py): each parsed to its type, each with its default, a bad value
refused in one line naming the variable, Streamlit's secrets only for the hosted settings, the environment read
again only when it changed, and no other module spelling a variable's name."""
from __future__ import annotations

import ast
import logging
from dataclasses import fields
from pathlib import Path

import pytest

from engine import settings
from engine.settings import SettingError, Settings, load

ROOT = Path(__file__).resolve().parents[1]

# (variable, a good value, the field it sets, what it becomes): one row per setting (a test checks that).
GOOD = [
    ("GLASSBOX_DEVICE", " CPU ", "device", "cpu"),
    ("GLASSBOX_FORWARD_THREADS", "3", "forward_threads", 3),
    ("GLASSBOX_MAX_FORWARDS", "64", "max_forwards", 64),
    ("GLASSBOX_TRAIN_THREADS", "2", "train_threads", 2),
    ("GLASSBOX_MAX_TRAINING_RUNS", "4", "max_training_runs", 4),
    ("GLASSBOX_MAX_TRAIN_MINUTES", "0.5", "max_train_minutes", 0.5),
    ("GLASSBOX_RECONNECT_GRACE_S", "30", "reconnect_grace_s", 30.0),
    ("GLASSBOX_TRACE_BUDGET_MB", "0.01", "trace_budget_mb", 0.01),
    ("GLASSBOX_TRACE_BUDGET_S", "12.5", "trace_budget_s", 12.5),
    ("GLASSBOX_INTERVENE_BUDGET_S", "90", "intervene_budget_s", 90.0),
    ("GLASSBOX_MODEL_BUDGET_MB", "300", "model_budget_mb", 300.0),
    ("GLASSBOX_MAX_MODELS", "1", "max_models", 1),
    ("GLASSBOX_SESSION_MODELS_MB", "1e3", "session_models_mb", 1000.0),
    ("GLASSBOX_QUANT_BUDGET_MB", "64", "quant_budget_mb", 64.0),
    ("GLASSBOX_HUB_DISK_MB", "512", "hub_disk_mb", 512.0),
    ("GLASSBOX_MODEL", "/srv/models/mine", "model", Path("/srv/models/mine")),
    ("GLASSBOX_MODELS_DIR", "my-models", "models_dir", Path("my-models")),
    ("GLASSBOX_HUB", "off", "hub", False),
    ("GLASSBOX_HUB_DIR", "/tmp/hub", "hub_dir", Path("/tmp/hub")),
    ("GLASSBOX_GPT2_TOKENIZER", "models/gpt2-tokenizer", "gpt2_tokenizer", Path("models/gpt2-tokenizer")),
    ("GLASSBOX_GUTENBERG_URL", "http://127.0.0.1:8000/", "gutenberg_url", "http://127.0.0.1:8000"),
    ("GLASSBOX_ROOM_DB", "postgresql://u:p@db.example.org/glassbox", "room_db",
     "postgresql+psycopg://u:p@db.example.org/glassbox"),
    ("GLASSBOX_ROOM_MAX_ATTENDEES", "30", "room_max_attendees", 30),
    ("GLASSBOX_ROOM_HOURS", "2.5", "room_hours", 2.5),
    ("GLASSBOX_HOSTED_BASE_URL", "https://api.example.org/v1", "hosted_base_url", "https://api.example.org/v1"),
    ("GLASSBOX_HOSTED_MODEL", "gpt-4o-mini", "hosted_model", "gpt-4o-mini"),
    ("GLASSBOX_HOSTED_API", "anthropic", "hosted_api", "anthropic"),
    ("GLASSBOX_HOSTED_API_KEY", "sk-host-123", "hosted_api_key", "sk-host-123"),
    ("GLASSBOX_HOSTED_USER_ENDPOINTS", "0", "hosted_user_endpoints", False),
    ("GLASSBOX_HOSTED_ALLOW_PRIVATE", "1", "hosted_allow_private", True),
    ("GLASSBOX_HOSTED_PER_MINUTE", "100", "hosted_per_minute", 100),
    ("GLASSBOX_HOSTED_MAX_SAMPLES", "3", "hosted_max_samples", 3),
    ("GLASSBOX_HOSTED_TIMEOUT_S", "1", "hosted_timeout_s", 1.0),
    ("GLASSBOX_NDIF", "1", "ndif", True),
    ("GLASSBOX_NDIF_URL", "http://127.0.0.1:8001/", "ndif_url", "http://127.0.0.1:8001"),
    ("GLASSBOX_NDIF_USER_KEYS", "off", "ndif_user_keys", False),
    ("GLASSBOX_NDIF_MAX_MB", "4", "ndif_max_mb", 4.0),
    ("GLASSBOX_NDIF_TIMEOUT_S", "30", "ndif_timeout_s", 30.0),
    ("GLASSBOX_NDIF_JOBS", "2", "ndif_jobs", 2),
    ("GLASSBOX_NDIF_DIR", "/srv/ndif", "ndif_dir", Path("/srv/ndif")),
    ("NDIF_API_KEY", "ndif-host-key", "ndif_api_key", "ndif-host-key"),
    ("HF_TOKEN", "hf_host_token", "hf_token", "hf_host_token"),
    ("HF_ENDPOINT", "https://hf-mirror.example.org", "hf_endpoint", "https://hf-mirror.example.org"),
]

# (variable, a value it refuses, what the message says it must be)
BAD = [
    ("GLASSBOX_MAX_FORWARDS", "abc", "must be a whole number from 1 to 64"),
    ("GLASSBOX_MAX_FORWARDS", "0", "must be a whole number from 1 to 64"),
    ("GLASSBOX_MAX_FORWARDS", "65", "must be a whole number from 1 to 64"),
    ("GLASSBOX_FORWARD_THREADS", "-1", "must be a whole number from 1 to 256"),
    ("GLASSBOX_TRAIN_THREADS", "1.5", "must be a whole number from 1 to 256"),
    ("GLASSBOX_MAX_TRAINING_RUNS", "many", "must be a whole number from 1 to 64"),
    ("GLASSBOX_MAX_MODELS", "0", "must be a whole number from 1 to 64"),
    ("GLASSBOX_MAX_TRAIN_MINUTES", "0", "must be a number above 0 (minutes)"),
    ("GLASSBOX_RECONNECT_GRACE_S", "soon", "must be a number above 0 (seconds)"),
    ("GLASSBOX_TRACE_BUDGET_MB", "lots", "must be a number above 0 (megabytes)"),
    ("GLASSBOX_TRACE_BUDGET_S", "nan", "must be a number above 0 (seconds)"),
    ("GLASSBOX_MODEL_BUDGET_MB", "inf", "must be a number above 0 (megabytes)"),
    ("GLASSBOX_SESSION_MODELS_MB", "-5", "must be a number above 0 (megabytes)"),
    ("GLASSBOX_HUB_DISK_MB", "4 GB", "must be a number above 0 (megabytes)"),
    ("GLASSBOX_QUANT_BUDGET_MB", "0", "must be a number above 0 (megabytes)"),
    ("GLASSBOX_HUB", "maybe", "must be 1 or 0 (on or off)"),
    ("GLASSBOX_HOSTED_USER_ENDPOINTS", "nope", "must be 1 or 0 (on or off)"),
    ("GLASSBOX_HOSTED_ALLOW_PRIVATE", "yes please", "must be 1 or 0 (on or off)"),
    ("GLASSBOX_GUTENBERG_URL", "ftp://mirror.example.org", "must be an http:// or https:// address"),
    ("GLASSBOX_ROOM_MAX_ATTENDEES", "0", "must be a whole number from 1 to 1000"),
    ("GLASSBOX_ROOM_HOURS", "200", "must be a number above 0 and at most 168 (hours)"),
    ("GLASSBOX_HOSTED_PER_MINUTE", "1001", "must be a whole number from 1 to 1000"),
    ("GLASSBOX_HOSTED_MAX_SAMPLES", "51", "must be a whole number from 1 to 50"),
    ("GLASSBOX_HOSTED_TIMEOUT_S", "61", "must be a number above 0 and at most 60 (seconds)"),
    ("GLASSBOX_NDIF", "sometimes", "must be 1 or 0 (on or off)"),
    ("GLASSBOX_NDIF_URL", "api.ndif.us", "must be an http:// or https:// address"),
    ("GLASSBOX_NDIF_MAX_MB", "2048", "must be a number above 0 and at most 1024 (megabytes)"),
    ("GLASSBOX_NDIF_TIMEOUT_S", "0", "must be a number above 0 and at most 3600 (seconds)"),
    ("GLASSBOX_NDIF_JOBS", "100", "must be a whole number from 1 to 64"),
]


def test_the_tables_here_cover_every_setting():
    assert sorted(v for v, *_ in GOOD) == sorted(settings.NAMES.values())
    assert {f for _, _, f, _ in GOOD} == {f.name for f in fields(Settings)}


@pytest.mark.parametrize("name, raw, field, value", GOOD, ids=[g[0] for g in GOOD])
def test_each_variable_is_parsed_to_its_type(name, raw, field, value):
    s = load({name: raw})
    assert getattr(s, field) == value and type(getattr(s, field)) is type(value)
    others = {f.name for f in fields(Settings)} - {field}
    assert all(getattr(s, f) == getattr(settings.DEFAULTS, f) for f in others), "one variable sets one field"


@pytest.mark.parametrize("name, raw, must", BAD, ids=[f"{b[0]}={b[1]}" for b in BAD])
def test_a_bad_value_is_one_line_naming_the_variable(name, raw, must):
    with pytest.raises(SettingError) as e:
        load({name: raw})
    assert str(e.value) == f"{name} {must}, not {raw!r}"
    assert isinstance(e.value, ValueError) and "\n" not in str(e.value)


def test_defaults_and_empty_values():
    d = load({})
    assert d == settings.DEFAULTS == load({name: "  " for name in settings.NAMES.values()})  # empty is unset
    assert (d.forward_threads, d.max_training_runs, d.max_train_minutes, d.reconnect_grace_s) == (1, 1, 20.0, 90.0)
    assert (d.trace_budget_mb, d.trace_budget_s, d.model_budget_mb, d.max_models) == (256.0, 5.0, 1536.0, 2)
    assert (d.session_models_mb, d.hub_disk_mb, d.hub, d.hosted_api, d.hosted_user_endpoints) == (
        300.0, 4096.0, True, "chat", True)
    assert (d.hosted_per_minute, d.hosted_max_samples, d.hosted_timeout_s) == (20, 10, 8.0)
    assert d.model is d.models_dir is d.hub_dir is d.gpt2_tokenizer is d.gutenberg_url is d.room_db is None
    assert (d.room_max_attendees, d.room_hours) == (100, 12.0)
    assert d.max_forwards >= 1 and d.train_threads >= 1 and d.device == ""


def test_budgets_in_the_units_the_code_uses():
    s = load({"GLASSBOX_TRACE_BUDGET_MB": "0.5", "GLASSBOX_MAX_TRAIN_MINUTES": "1.5"})
    assert s.trace_budget_bytes == 2**19 and s.trace_cache_bytes == settings.TRACES_KEPT * 2**19
    assert s.max_run_s == 90.0 and settings.DEFAULTS.model_budget_bytes == 1536 * 2**20
    assert settings.DEFAULTS.session_models_bytes == 300 * 2**20 and settings.DEFAULTS.hub_disk_bytes == 4 * 2**30


def test_secrets_fill_only_the_hosted_settings_the_environment_leaves_unset():
    secrets = {"GLASSBOX_HOSTED_BASE_URL": "https://secret.example.org/v1", "GLASSBOX_HOSTED_PER_MINUTE": 5,
               "GLASSBOX_HOSTED_USER_ENDPOINTS": False, "GLASSBOX_MAX_FORWARDS": "7"}
    s = load({}, secrets)
    assert (s.hosted_base_url, s.hosted_per_minute, s.hosted_user_endpoints) == (
        "https://secret.example.org/v1", 5, False)
    assert s.max_forwards == settings.DEFAULTS.max_forwards, "secrets give only the hosted settings"
    s = load({"GLASSBOX_HOSTED_BASE_URL": "https://env.example.org/v1"}, secrets)
    assert s.hosted_base_url == "https://env.example.org/v1", "the environment wins"
    with pytest.raises(SettingError, match="GLASSBOX_HOSTED_PER_MINUTE must be"):
        load({}, {"GLASSBOX_HOSTED_PER_MINUTE": "0"})


def test_a_room_database_is_a_path_or_a_url_and_never_shown(tmp_path):
    assert load({"GLASSBOX_ROOM_DB": str(tmp_path / "r.db")}).room_db == f"sqlite:///{tmp_path / 'r.db'}"
    assert load({"GLASSBOX_ROOM_DB": "sqlite:////srv/rooms.db"}).room_db == "sqlite:////srv/rooms.db"
    for scheme in ("postgres", "postgresql", "postgresql+psycopg"):
        assert load({"GLASSBOX_ROOM_DB": f"{scheme}://h/db"}).room_db == "postgresql+psycopg://h/db"
    s = load({"GLASSBOX_ROOM_DB": "postgresql://me:hunter2@h/db"})
    assert "hunter2" not in repr(s), "a database URL may hold a password"
    with pytest.raises(SettingError) as e:
        load({"GLASSBOX_ROOM_DB": "mysql://me:hunter2@h/db"})
    assert str(e.value) == ("GLASSBOX_ROOM_DB must be a file path, sqlite:///PATH or "
                            "postgresql://USER:PASSWORD@HOST/DATABASE, not (hidden)")


def test_the_host_key_never_shows():
    s = load({"GLASSBOX_HOSTED_API_KEY": "sk-secret-value"})
    assert "sk-secret-value" not in repr(s) and s.hosted_api_key == "sk-secret-value"
    s = load({"NDIF_API_KEY": "ndif-secret", "HF_TOKEN": "hf_secret"})
    assert "ndif-secret" not in repr(s) and "hf_secret" not in repr(s)


def test_the_ecosystem_s_own_names_are_read_here_and_from_secrets_but_not_other_settings():
    """NDIF_API_KEY, HF_TOKEN and HF_ENDPOINT keep their names; the NDIF rows may come from Streamlit's secrets."""
    assert settings.OWN_NAMES == {"NDIF_API_KEY", "HF_TOKEN", "HF_ENDPOINT"}
    s = load({}, {"NDIF_API_KEY": "from-secrets", "GLASSBOX_NDIF": True, "HF_ENDPOINT": "https://x.example"})
    assert s.ndif_api_key == "from-secrets" and s.ndif is True and s.hf_endpoint == "", "HF_ENDPOINT: environment only"
    assert load({"NDIF_API_KEY": "from-env"}, {"NDIF_API_KEY": "from-secrets"}).ndif_api_key == "from-env"


def test_the_environment_is_parsed_once_and_again_when_it_changes(monkeypatch):
    monkeypatch.delenv("GLASSBOX_MAX_MODELS", raising=False)
    first = settings.current()
    assert settings.current() is first, "an unchanged environment is not parsed again"
    monkeypatch.setenv("GLASSBOX_MAX_MODELS", "5")
    assert settings.current().max_models == 5
    monkeypatch.setenv("GLASSBOX_MAX_MODELS", "none")
    with pytest.raises(SettingError, match="GLASSBOX_MAX_MODELS must be a whole number"):
        settings.current()  # said on every call, not once and then forgotten
    with pytest.raises(SettingError):
        settings.current()


def test_a_removed_or_unknown_name_is_a_warning(monkeypatch, caplog):
    monkeypatch.setenv("GLASSBOX_SERVER_TRACE_MB", "1024")
    monkeypatch.setenv("GLASSBOX_MAX_FORWARD", "3")  # a typo of GLASSBOX_MAX_FORWARDS
    with caplog.at_level(logging.WARNING, logger="glassbox.settings"):
        settings.current()
    said = caplog.text
    assert "GLASSBOX_SERVER_TRACE_MB is no longer read: set GLASSBOX_TRACE_BUDGET_MB" in said
    assert "GLASSBOX_MAX_FORWARD is not a Glassbox setting" in said


def test_the_readme_table_lists_every_setting_with_its_default():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("\n## Settings"):]
    rows = {line.split("|")[1].strip(" `"): line.split("|")[2].strip() for line in section.splitlines()
            if line.startswith("| `")}
    assert {name: default for name, default, _ in settings.table()}.items() <= rows.items()


def _spelled_names(path: Path) -> list[str]:
    """String constants in `path` that are a GLASSBOX_ name (docstrings aside)."""
    tree = ast.parse(path.read_text())
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and n.value.startswith("GLASSBOX_") and id(n) not in docs]


def test_only_the_settings_module_names_a_variable():
    files = [*(ROOT / "engine").rglob("*.py"), *(ROOT / "ui").rglob("*.py"), *(ROOT / "pages").glob("*.py"),
             ROOT / "app.py"]
    spelled = {str(p.relative_to(ROOT)): names for p in files if (names := _spelled_names(p))}
    assert set(spelled) == {"engine/settings.py"}, spelled


def test_streamlit_secrets_still_reach_the_hosted_settings(monkeypatch):
    """The Next token page's hosted section passes st.secrets as the overlay (ui/next_token/hosted_state.py)."""
    from streamlit.testing.v1 import AppTest

    def script():
        import streamlit as st

        from ui.next_token.hosted_state import host_endpoint, hosted_settings, limits

        s, ep = hosted_settings(), host_endpoint()
        for value in (ep.base_url, ep.model, s.hosted_api_key, limits().per_minute, s.max_forwards):
            st.text(str(value))

    for name in ("BASE_URL", "MODEL", "API_KEY", "PER_MINUTE"):
        monkeypatch.delenv(settings.HOSTED_PREFIX + name, raising=False)
    monkeypatch.setenv("GLASSBOX_HOSTED_MODEL", "from-env")
    at = AppTest.from_function(script)
    at.secrets["GLASSBOX_HOSTED_BASE_URL"] = "https://secret.example.org/v1"
    at.secrets["GLASSBOX_HOSTED_MODEL"] = "from-secrets"
    at.secrets["GLASSBOX_HOSTED_API_KEY"] = "sk-from-secrets"
    at.secrets["GLASSBOX_HOSTED_PER_MINUTE"] = 7
    at.secrets["GLASSBOX_MAX_FORWARDS"] = 9  # not a hosted setting: the secrets do not set it
    at.run()
    assert not at.exception, at.exception
    shown = [t.value for t in at.text]
    assert shown[:4] == ["https://secret.example.org/v1", "from-env", "sk-from-secrets", "7"]
    assert shown[4] == str(settings.current().max_forwards) != "9"
