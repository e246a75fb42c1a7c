"""The sandbox implements eSputnik's documented semantics, over HTTP on a real port."""

import requests

from tests.helpers import API_KEY, APP_UUID


def post(sandbox, body, app=APP_UUID, key=API_KEY, raw=None):
    return requests.post(
        f"{sandbox.base_url}/v1/apps/{app}/tokens",
        json=None if raw is not None else body,
        data=raw,
        auth=("anyone", key),
        timeout=5,
    )


def test_wrong_key_is_401_and_stores_nothing(sandbox):
    response = post(sandbox, {"tokens": [{"token": "t", "email": "a@b.co"}]}, key="wrong")
    assert response.status_code == 401
    assert sandbox.state.snapshot()["tokens"] == []


def test_unknown_app_is_404(sandbox):
    response = post(sandbox, {"tokens": []}, app="11111111-2222-3333-4444-555555555555")
    assert response.status_code == 404
    assert "11111111-2222-3333-4444-555555555555" in response.text


def test_bodies_eSputnik_refuses_are_400_with_a_reason(sandbox):
    cases = {
        "no tokens array": {"items": []},
        "token missing": {"tokens": [{"email": "a@b.co"}]},
        "no identifier": {"tokens": [{"token": "t1"}]},
        "bad contactId": {"tokens": [{"token": "t1", "contactId": "x"}]},
    }
    for case, body in cases.items():
        response = post(sandbox, body)
        assert response.status_code == 400, case
        assert response.text, case
    assert post(sandbox, None, raw=b"{not json").status_code == 400
    assert "token" in post(sandbox, cases["token missing"]).text
    assert sandbox.state.snapshot()["tokens"] == []


def test_a_bad_entry_refuses_the_whole_request(sandbox):
    body = {"tokens": [{"token": "ok", "email": "a@b.co"}, {"token": "bad"}]}
    assert post(sandbox, body).status_code == 400
    assert sandbox.state.snapshot()["tokens"] == []


def test_contact_resolution_follows_identifier_priority(sandbox):
    known = sandbox.state.add_contact(
        {"id": 500, "email": "known@example.com", "phone": "380501234567"}
    )
    response = post(
        sandbox,
        {
            "tokens": [
                {"token": "a", "contactId": 500, "email": "other@example.com"},
                {"token": "b", "phone": "380501234567"},
                {"token": "c", "externalCustomerId": "NEW-1", "email": "known@example.com"},
                {"token": "d", "email": "known@example.com"},
            ]
        },
    )
    assert response.status_code == 200
    tokens = {t["token"]: t for t in sandbox.state.snapshot()["tokens"]}
    assert tokens["a"]["contact_id"] == known["id"] and tokens["a"]["resolved_by"] == "contactId"
    assert tokens["b"]["contact_id"] == known["id"] and tokens["b"]["resolved_by"] == "phone"
    # The highest-priority identifier (externalCustomerId) matches nobody: a contact is created,
    # even though the email would have matched.
    assert tokens["c"]["contact_created"] and tokens["c"]["contact_id"] != known["id"]
    assert tokens["d"]["contact_id"] == known["id"]


def test_storage_is_append_only(sandbox):
    body = {"tokens": [{"token": "same", "email": "a@b.co"}]}
    assert post(sandbox, body).status_code == 200
    assert post(sandbox, body).status_code == 200
    tokens = [t["token"] for t in sandbox.state.snapshot()["tokens"]]
    assert tokens == ["same", "same"]


def test_state_endpoint_reports_what_it_holds(sandbox):
    post(sandbox, {"tokens": [{"token": "z", "externalCustomerId": "C-1"}]})
    state = requests.get(sandbox.base_url.replace("/api", "/_sandbox/state"), timeout=5).json()
    assert [t["token"] for t in state["tokens"]] == ["z"]
    assert state["contacts"][0]["externalCustomerId"] == "C-1"


def test_an_empty_token_list_with_a_valid_key_stores_nothing_and_is_not_refused(sandbox):
    response = post(sandbox, {"tokens": []})
    assert response.status_code == 200
    assert sandbox.state.snapshot()["tokens"] == []
    assert post(sandbox, {"tokens": []}, key="wrong").status_code == 401
