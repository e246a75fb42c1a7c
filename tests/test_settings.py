"""Bad or missing settings stop the run at its start, with a message naming the setting."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterInvalidConfigError

from dagster_project.definitions import defs
from dagster_project.env import from_env
from dagster_project.resources import EsputnikResource, WarehouseResource, resources_from_env
from dagster_project.settings import SyncSettings
from tests.helpers import (
    API_KEY,
    APP_UUID,
    run_sync,
    sync_resources,
    token_counts,
    warehouse_engine,
)


def failure_message(result) -> str:
    """Every error text the run recorded, causes included."""
    errors = [getattr(e.event_specific_data, "error", None) for e in result.all_events]
    return "\n".join(error.to_string() for error in errors if error is not None)


@pytest.fixture
def env(monkeypatch, sandbox, sqlite_url):
    monkeypatch.setenv("ESPUTNIK_API_KEY", API_KEY)
    monkeypatch.setenv("ESPUTNIK_APP_UUID", APP_UUID)
    monkeypatch.setenv("ESPUTNIK_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("WAREHOUSE_URL", sqlite_url)
    warehouse_engine(sqlite_url)
    return monkeypatch


@pytest.mark.parametrize("missing", ["ESPUTNIK_API_KEY", "ESPUTNIK_APP_UUID"])
def test_missing_required_setting_fails_before_any_step(env, missing):
    env.delenv(missing)
    with pytest.raises(DagsterInvalidConfigError, match=missing):
        run_sync(resources_from_env())


def test_env_settings_reach_the_resources(env):
    env.setenv("ESPUTNIK_CHUNK_SIZE", "250")
    result = run_sync(resources_from_env())
    assert result.success
    assert (
        result.asset_materializations_for_node("esputnik_pushed_tokens")[0]
        .metadata["chunk_size"]
        .value
        == 250
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ESPUTNIK_APP_UUID", "not-a-uuid"),
        ("ESPUTNIK_BASE_URL", "esputnik.com/api"),
        ("ESPUTNIK_CHUNK_SIZE", "0"),
        ("PHONE_DEFAULT_REGION", "XX"),
    ],
)
def test_unusable_setting_fails_at_start_naming_it(env, variable, value):
    env.setenv(variable, value)
    result = run_sync(resources_from_env())
    assert not result.success
    assert variable in failure_message(result)
    assert not result.asset_materializations_for_node("subscriber_extract")


def test_wrong_api_key_fails_with_what_to_check(sqlite_url, sandbox):
    warehouse_engine(sqlite_url)
    from tests.helpers import add_subscribers

    add_subscribers(
        warehouse_engine(sqlite_url),
        {"chat_id": "1", "phone": "0501234567", "subscribed_at": "2026-01-02 00:00:00"},
    )
    resources = sync_resources(sqlite_url, sandbox, api_key="not-the-key-5f2")
    result = run_sync(resources)
    assert not result.success
    message = failure_message(result)
    assert "ESPUTNIK_API_KEY" in message and "not-the-key-5f2" not in message
    assert token_counts(sandbox) == {}


def test_warehouse_without_the_tables_says_what_to_do(tmp_path, sandbox):
    empty = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    resources = sync_resources(empty, sandbox)
    result = run_sync(resources)
    assert not result.success
    message = failure_message(result)
    assert "telegram_subscribers" in message and "WAREHOUSE_URL" in message


def test_bad_warehouse_url_names_the_setting(sandbox):
    resources = sync_resources("nosuchdialect://x", sandbox)
    result = run_sync(resources, instance=DagsterInstance.ephemeral())
    assert "WAREHOUSE_URL" in failure_message(result)


def test_resource_repr_hides_the_key():
    resource = WarehouseResource()
    esputnik = EsputnikResource(api_key=API_KEY, app_uuid=APP_UUID)
    assert API_KEY not in repr(esputnik) and API_KEY not in str(esputnik)
    assert "warehouse.sqlite" in resource.url


def test_empty_default_region_refuses_numbers_without_country_code(monkeypatch):
    def region() -> str | None:
        settings = resources_from_env()["sync_settings"].process_config_and_initialize()
        return settings.default_region()

    monkeypatch.setenv("PHONE_DEFAULT_REGION", "")
    assert region() is None
    monkeypatch.setenv("PHONE_DEFAULT_REGION", "pl")
    assert region() == "PL"
    monkeypatch.delenv("PHONE_DEFAULT_REGION")
    assert region() == "UA"


def test_every_setting_read_from_the_environment_is_documented():
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", readme))
    resources = [*resources_from_env().values(), defs.resources["alerts"]]
    variables = {
        field.json_schema_extra["env"]
        for resource in resources
        for field in type(resource).model_fields.values()
        if isinstance(field.json_schema_extra, dict)
    }
    assert len(variables) > 20
    assert variables - documented == set()


def test_push_safety_settings_are_read_from_the_environment(env):
    env.setenv("ESPUTNIK_READ_TIMEOUT_SECONDS", "12.5")
    env.setenv("SYNC_MAX_REFUSED_SHARE", "0.2")
    assert from_env(EsputnikResource).read_timeout_seconds == 12.5
    assert from_env(SyncSettings).max_refused_share == 0.2


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("SYNC_MAX_NO_IDENTIFIER_SHARE", "a quarter", "is not a number"),
        ("SYNC_DRY_RUN", "perhaps", "must be true or false"),
        ("SYNC_CHANGE_OVERLAP_HOURS", "-5", "greater than 0"),
    ],
)
def test_an_unreadable_value_fails_the_run_not_the_code_location(env, variable, value, says):
    """The code location loads (other jobs, the UI, the sensors keep working); the run that
    uses the setting fails at its start, naming it."""
    env.setenv(variable, value)
    loaded = subprocess.run(
        [sys.executable, "-c", "import dagster_project.definitions"],
        capture_output=True,
        text=True,
    )
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    result = run_sync(resources_from_env())
    assert not result.success
    message = failure_message(result)
    assert variable in message and says in message
    assert not result.asset_materializations_for_node("subscriber_extract")
