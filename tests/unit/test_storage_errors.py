import pytest
from s3fs.utils import FileExpired

from sarashina_batch.output.lease import LeaseHeld
from sarashina_batch.secrets import expand_env, redact, safe_options, secret_values
from sarashina_batch.storage import errors as storage_errors
from sarashina_batch.storage.errors import (
    StorageError,
    StoreUnavailable,
    describe,
    explained,
    is_transient,
    with_retries,
)


def test_env_references_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("SB_TEST_SECRET", "s3cr3t-value")
    options = {"key": "AKIA", "secret": "${env:SB_TEST_SECRET}", "client_kwargs": {"endpoint_url": "http://x"}}
    assert expand_env(options)["secret"] == "s3cr3t-value"
    assert secret_values(options) == ["AKIA", "s3cr3t-value"]
    assert safe_options(options) == {
        "key": "***",
        "secret": "${env:SB_TEST_SECRET}",
        "client_kwargs": {"endpoint_url": "http://x"},
    }
    assert redact("failed with s3cr3t-value", secret_values(options)) == "failed with ***"


def test_missing_env_reference_names_the_variable():
    with pytest.raises(ValueError, match="SB_NOT_SET_ANYWHERE"):
        expand_env({"secret": "${env:SB_NOT_SET_ANYWHERE}"})


@pytest.mark.parametrize(
    "err, transient",
    [
        (ConnectionResetError("reset"), True),
        (TimeoutError("read timed out"), True),
        (OSError("An error occurred (SlowDown): Please reduce your request rate"), True),
        (OSError("503 Service Unavailable"), True),
        # a response reset mid-body, as aiohttp and http.client report it
        (OSError("Response payload is not completed: <ContentLengthError: 400, message='Not enough data'>"), True),
        (OSError("IncompleteRead(1024 bytes read, 1024 more expected)"), True),
        (FileNotFoundError("nope"), False),
        (PermissionError("Access Denied"), False),
        (ValueError("bad parquet"), False),
        (OSError("Bad Gateway (502)"), True),
        # a number that holds a status code is not one
        (OSError("read 15003 of 25000 bytes, then the file ended"), False),
        # the job's own errors are never retried, whatever their text holds (CI: a pid 15003)
        (LeaseHeld("output s3://b/out is being written by run x (host h, pid 15003, lease expires in 9 s)"), False),
        # s3fs: the object was replaced between opening and reading (CI: the lease's heartbeat)
        (FileExpired("b/out/_lease.json", "449619fa"), True),
    ],
)
def test_transient_or_permanent(err, transient):
    assert is_transient(err) is transient


def test_transient_errors_are_retried_then_succeed(monkeypatch):
    sleeps = []
    monkeypatch.setattr(storage_errors.time, "sleep", sleeps.append)
    calls = iter([ConnectionResetError("reset"), OSError("SlowDown"), "done"])

    def flaky():
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    assert with_retries(flaky, "test") == "done"
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0] * 0.9  # backoff grows


def always(err: Exception):
    calls = []

    def failing():
        calls.append(1)
        raise err

    return failing, calls


def test_a_store_that_keeps_throttling_is_retried_patiently_and_ends_as_unavailable(monkeypatch):
    sleeps = []
    monkeypatch.setattr(storage_errors.time, "sleep", sleeps.append)
    failing, calls = always(OSError("An error occurred (SlowDown): Please reduce your request rate"))
    with pytest.raises(StoreUnavailable, match=r"input s3://b/in: .* kept failing"):
        explained(failing, "s3://b/in", "input", "listing the input")
    assert len(calls) == 8 and sum(sleeps) >= 15  # 16 to 32 s of jittered backoff, not three quick tries


def test_a_store_that_cannot_be_reached_fails_in_seconds_as_a_configuration_error(monkeypatch):
    sleeps = []
    monkeypatch.setattr(storage_errors.time, "sleep", sleeps.append)
    failing, calls = always(ConnectionRefusedError("Could not connect to the endpoint URL"))
    with pytest.raises(StorageError, match="endpoint_url") as raised:
        explained(failing, "s3://b/in", "input", "listing the input")
    assert not isinstance(raised.value, StoreUnavailable)
    assert len(calls) == 3 and sum(sleeps) < 5


class WorkerFailed(Exception):
    """What a Ray task's failure looks like on the driver: the worker's exception as `cause`."""

    def __init__(self, cause: BaseException):
        super().__init__("the task failed; see its cause")
        self.cause = cause


def test_a_store_failure_inside_a_ray_task_is_judged_by_its_cause(monkeypatch):
    monkeypatch.setattr(storage_errors.time, "sleep", lambda s: None)
    inner = OSError("An error occurred (SlowDown): Please reduce your request rate")
    wrapped = WorkerFailed(RuntimeError("user code failed"))
    wrapped.cause.__cause__ = inner
    with pytest.raises(StoreUnavailable, match="output s3://b/out: .* kept failing") as raised:
        explained(lambda: (_ for _ in ()).throw(wrapped), "s3://b/out", "output", "staging", writing=True)
    assert raised.value.__cause__ is wrapped
    # The job's own error inside a task is not a store's: it is raised as it is.
    held = WorkerFailed(LeaseHeld("the output is held by run r1 (pid 15003)"))
    with pytest.raises(WorkerFailed):
        explained(lambda: (_ for _ in ()).throw(held), "s3://b/out", "output", "staging", writing=True)
    # Nor is one already worded for the user: an input's error keeps its words inside the output's step.
    worded = StorageError("input s3://b/in: access denied (...)")
    worded.__cause__ = PermissionError("Access Denied")
    with pytest.raises(StorageError, match="^input s3://b/in: access denied"):
        explained(lambda: (_ for _ in ()).throw(worded), "s3://b/out", "output", "staging", writing=True)


def test_permanent_errors_are_not_retried(monkeypatch):
    monkeypatch.setattr(storage_errors.time, "sleep", lambda s: pytest.fail("slept on a permanent error"))
    with pytest.raises(StorageError, match=r"output s3://b/out: access denied .* check the credentials"):
        explained(lambda: (_ for _ in ()).throw(PermissionError("Access Denied")), "s3://b/out", "output", "x")


def test_messages_name_the_uri_and_the_fix():
    assert (
        describe(FileNotFoundError("The specified bucket does not exist"), "s3://nb/x", "input")
        == "input s3://nb/x: the bucket does not exist; create it or fix input.uri"
    )
    assert "check output.storage_options.endpoint_url" in describe(
        ConnectionRefusedError("Could not connect to the endpoint URL"), "s3://b/o", "output"
    )


def test_unset_env_reference_hides_the_other_secrets(monkeypatch):
    monkeypatch.delenv("SB_UNSET_VAR", raising=False)
    assert secret_values({"key": "${env:SB_UNSET_VAR}", "secret": "literal-secret"}) == ["literal-secret"]
