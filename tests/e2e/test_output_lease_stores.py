"""The one-writer lease is a real compare-and-swap on every store users write to: local disk,
S3 (SeaweedFS), Google Cloud Storage (fake-gcs-server) and Azure Blob Storage (Azurite),
each on loopback. Renewals go through, a stale writer is refused, and of many runs racing
for a fresh output exactly one wins."""

import logging
import os
import threading
import time

import pytest

from sarashina_batch.output.layout import OutputLayout
from sarashina_batch.output.lease import LeaseHeld, LeaseLost, OutputLease
from sarashina_batch.output.lease_stores import AdvisoryStore, Conflict


@pytest.fixture(params=["file", "s3", "gs", "az"])
def output(request, tmp_path):
    """(uri, storage options) of a fresh output on each store."""
    if request.param == "file":
        return str(tmp_path / "out"), {}
    if request.param == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        return f"s3://{bucket}/out", request.getfixturevalue("s3").storage_options()
    store = request.getfixturevalue({"gs": "gcs", "az": "azurite"}[request.param])
    bucket = f"sb{os.urandom(5).hex()}"
    store.create_bucket(bucket)
    return f"{store.scheme}://{bucket}/out", store.storage_options()


@pytest.mark.integration
def test_the_lease_is_compare_and_swap(output, caplog):
    uri, options = output
    layout = OutputLayout(uri, options)
    with caplog.at_level(logging.WARNING):
        holder = OutputLease(layout, "run-a", ttl_s=1)
    assert not isinstance(holder.store, AdvisoryStore)
    assert "advisory" not in caplog.text
    assert holder.acquire() is None
    first_token = holder._token
    holder.start_heartbeat()
    time.sleep(2.5)
    holder.confirm()  # renewed in time
    assert holder._token != first_token
    with pytest.raises(LeaseHeld, match="run-a"):
        OutputLease(layout, "run-b", ttl_s=30).acquire()

    stale = holder.store.read()
    holder.release(clean=True)
    with pytest.raises(Conflict):
        holder.store.write({"run_id": "late"}, expected=stale.token)  # the version it read is gone
    with pytest.raises(Conflict):
        holder.store.write({"run_id": "late"}, expected=None)  # and "create" fails on an existing lease
    assert OutputLease(layout, "run-b", ttl_s=30).acquire().state == "released"


@pytest.mark.integration
def test_of_runs_racing_for_a_fresh_output_exactly_one_wins(output):
    uri, options = output
    contenders = 6
    start = threading.Barrier(contenders)
    won, refused, failed = [], [], []

    def contend(n: int) -> None:
        lease = OutputLease(OutputLayout(uri, options), f"run-{n}", ttl_s=60)
        start.wait()
        try:
            lease.acquire()
            won.append(lease)
        except LeaseHeld:
            refused.append(n)
        except Exception as err:  # noqa: BLE001 - reported below
            failed.append(err)

    threads = [threading.Thread(target=contend, args=(n,)) for n in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failed, failed
    assert len(won) == 1 and len(refused) == contenders - 1
    winner = won[0]
    assert winner.store.read().payload["run_id"] == winner.run_id
    winner.confirm()
    winner.release(clean=True)


@pytest.mark.integration
def test_a_taken_over_holder_stops_committing(output):
    """A holder that stalls past its expiry and wakes up must not overwrite its successor."""
    uri, options = output
    layout = OutputLayout(uri, options)
    stalled = OutputLease(layout, "run-a", ttl_s=1)
    stalled.acquire()
    time.sleep(1.2)
    successor = OutputLease(layout, "run-b", ttl_s=30)
    assert successor.acquire().run_id == "run-a"
    stalled.start_heartbeat()
    time.sleep(1.5)
    with pytest.raises(LeaseLost, match="taken over"):
        stalled.confirm()
    stalled.release(clean=True)
    assert successor.store.read().payload["run_id"] == "run-b"
    successor.confirm()
