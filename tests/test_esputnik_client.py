"""The HTTP client against the sandbox: typed errors, payload shape, no key leaks."""

import pytest

from dagster_project.core.esputnik import (
    EsputnikClient,
    EsputnikRejectedError,
    EsputnikSettingsError,
    EsputnikUnavailableError,
    token_payload,
)
from tests.helpers import API_KEY, APP_UUID


def client_for(sandbox, **overrides) -> EsputnikClient:
    settings = {
        "base_url": sandbox.base_url,
        "app_uuid": APP_UUID,
        "api_key": API_KEY,
        "max_retries": 1,
        "backoff_factor": 0.01,
    }
    return EsputnikClient(**(settings | overrides))


def test_payload_uses_esputnik_names_and_skips_missing():
    row = {
        "token": "t",
        "contact_id": 5,
        "external_customer_id": None,
        "phone": "380501234567",
        "email": float("nan"),
    }
    assert token_payload(row) == {"token": "t", "contactId": 5, "phone": "380501234567"}


def test_accepted_chunk_is_stored(sandbox):
    client = client_for(sandbox)
    assert client.post_tokens([{"token": "t1", "email": "a@b.co"}]) == 200
    assert sandbox.state.snapshot()["tokens"][0]["sent"] == {"email": "a@b.co"}


def test_wrong_key_names_the_setting_and_hides_the_key(sandbox):
    client = client_for(sandbox, api_key="wrong-secret-123")
    with pytest.raises(EsputnikSettingsError) as error:
        client.post_tokens([{"token": "t1", "email": "a@b.co"}])
    assert "ESPUTNIK_API_KEY" in str(error.value)
    assert "wrong-secret-123" not in str(error.value)
    assert "wrong-secret-123" not in repr(client)


def test_unknown_app_names_the_setting(sandbox):
    client = client_for(sandbox, app_uuid="11111111-2222-3333-4444-555555555555")
    with pytest.raises(EsputnikSettingsError, match="ESPUTNIK_APP_UUID"):
        client.post_tokens([{"token": "t1", "email": "a@b.co"}])


def test_400_carries_the_reason(sandbox):
    with pytest.raises(EsputnikRejectedError) as error:
        client_for(sandbox).post_tokens([{"token": "t1"}])
    assert "contactId, externalCustomerId, phone or email" in error.value.reason


def test_unreachable_server_is_unavailable():
    client = EsputnikClient(
        base_url="http://127.0.0.1:9/api", app_uuid=APP_UUID, api_key=API_KEY, max_retries=0
    )
    with pytest.raises(EsputnikUnavailableError, match="unreachable"):
        client.post_tokens([{"token": "t1", "email": "a@b.co"}])
