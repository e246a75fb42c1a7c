"""Re-executing a failed run from its failure resumes its parent's batch."""

import importlib
from collections import Counter

from dagster import DagsterInstance, ReexecutionOptions, execute_job
from dagster._core.definitions.reconstruct import ReconstructableRepository

from tests.helpers import API_KEY, APP_UUID, add_phone_subscribers, token_counts, warehouse_engine

TOKENS = [str(8000 + n) for n in range(12)]


def test_reexecution_from_failure_pushes_only_the_rest(sqlite_url, sandbox, monkeypatch, tmp_path):
    add_phone_subscribers(warehouse_engine(sqlite_url), TOKENS)
    for name, value in {
        "ESPUTNIK_API_KEY": API_KEY,
        "ESPUTNIK_APP_UUID": APP_UUID,
        "ESPUTNIK_BASE_URL": sandbox.base_url,
        "WAREHOUSE_URL": sqlite_url,
        "ESPUTNIK_CHUNK_SIZE": "4",
        "ESPUTNIK_MAX_RETRIES": "0",
    }.items():
        monkeypatch.setenv(name, value)
    # Definitions read the environment when the module loads: load it afresh for these settings.
    importlib.reload(importlib.import_module("dagster_project.definitions"))
    job = ReconstructableRepository.for_module(
        "dagster_project.definitions", "defs", working_directory=str(tmp_path)
    ).get_reconstructable_job("esputnik_token_sync_job")
    sandbox.set_faults(fail_after=1, fail_status=503)
    (tmp_path / "home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        with execute_job(job, instance=instance, raise_on_error=False) as failed:
            assert not failed.success
        assert sum(token_counts(sandbox).values()) == 4  # one chunk got through

        sandbox.set_faults()
        options = ReexecutionOptions.from_failure(failed.run_id, instance)
        with execute_job(job, instance=instance, reexecution_options=options) as resumed:
            assert resumed.success
            steps = {e.step_key for e in resumed.all_events if e.is_step_success}
    assert steps == {"esputnik_pushed_tokens"}
    assert token_counts(sandbox) == Counter(dict.fromkeys(TOKENS, 1))
