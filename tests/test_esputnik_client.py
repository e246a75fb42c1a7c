"""The HTTP client against the sandbox: typed errors, payload shape, no key leaks."""

import time

import pytest

from dagster_project.core.esputnik import (
    EsputnikAmbiguousError,
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


@pytest.mark.parametrize("status", [500, 502, 504])
def test_an_answer_that_may_have_stored_the_chunk_is_not_retried(sandbox, status):
    sandbox.set_faults(sequence=[f"store-{status}"])
    with pytest.raises(EsputnikAmbiguousError, match="may have stored"):
        client_for(sandbox, max_retries=3).post_tokens([{"token": "t1", "email": "a@b.co"}])
    assert sandbox.state.snapshot()["requests_seen"] == 1


def test_a_dropped_answer_is_not_retried(sandbox):
    sandbox.set_faults(sequence=["store-drop"])
    with pytest.raises(EsputnikAmbiguousError):
        client_for(sandbox, max_retries=3).post_tokens([{"token": "t1", "email": "a@b.co"}])
    assert [t["token"] for t in sandbox.state.snapshot()["tokens"]] == ["t1"]


def test_answers_that_stored_nothing_are_retried(sandbox):
    sandbox.set_faults(sequence=["429", "503", "503"])
    assert client_for(sandbox, max_retries=3).post_tokens([{"token": "t1", "email": "a@b"}]) == 200
    assert sandbox.state.snapshot()["requests_seen"] == 4


def test_a_long_retry_after_is_capped_by_backoff_max(sandbox):
    sandbox.set_faults(fail_first=1, fail_status=429, retry_after=3600)
    started = time.monotonic()
    client = client_for(sandbox, max_retries=2, backoff_max=1.0)
    assert client.post_tokens([{"token": "t1", "email": "a@b.co"}]) == 200
    assert time.monotonic() - started < 5


def test_check_access_stores_nothing_and_names_the_wrong_setting(sandbox):
    assert client_for(sandbox).check_access() == 200
    assert sandbox.state.snapshot()["tokens"] == []
    with pytest.raises(EsputnikSettingsError, match="ESPUTNIK_API_KEY"):
        client_for(sandbox, api_key="wrong-secret-123").check_access()
    other_app = "11111111-2222-3333-4444-555555555555"
    with pytest.raises(EsputnikSettingsError, match="ESPUTNIK_APP_UUID"):
        client_for(sandbox, app_uuid=other_app).check_access()


def test_check_access_without_an_answer_is_unavailable():
    client = EsputnikClient(
        base_url="http://127.0.0.1:9/api", app_uuid=APP_UUID, api_key=API_KEY, max_retries=0
    )
    with pytest.raises(EsputnikUnavailableError):
        client.check_access()


def test_credentials_in_the_base_url_never_reach_a_message(sandbox):
    host = sandbox.base_url.removeprefix("http://")
    base = f"http://ops:url-secret-77@{host}"
    client = client_for(sandbox, base_url=base, app_uuid="11111111-2222-3333-4444-555555555555")
    with pytest.raises(EsputnikSettingsError) as error:
        client.post_tokens([{"token": "t1", "email": "a@b.co"}])
    assert "url-secret-77" not in str(error.value) and "***@" in str(error.value)
    assert "url-secret-77" not in repr(client)
    unreachable = client_for(sandbox, base_url="http://ops:url-secret-77@127.0.0.1:9/api")
    with pytest.raises(EsputnikUnavailableError) as error:
        unreachable.post_tokens([{"token": "t1", "email": "a@b.co"}])
    assert "url-secret-77" not in str(error.value)
