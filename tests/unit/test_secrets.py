"""Every secret shape is found, masked where written and redacted where printed."""

import pytest
from ray import cloudpickle

from sarashina_batch.secrets import expand_env, redact, redact_all, safe_options, secret_values

ACCOUNT_KEY = "c2VjcmV0LWFjY291bnQta2V5LWJhc2U2NA=="
CONNECTION = f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={ACCOUNT_KEY};EndpointSuffix=core.windows.net"


@pytest.fixture
def options(monkeypatch):
    monkeypatch.setenv("SB_SECRET_FROM_ENV", "env-secret-0123456789")
    return {
        "key": "AKIAEXAMPLEKEY",
        "secret": "${env:SB_SECRET_FROM_ENV}",
        "connection_string": CONNECTION,
        "client_kwargs": {"endpoint_url": "https://alice:url-password-42@minio.internal:9000"},
        "headers": [{"Authorization": "Bearer list-token-abcdef"}],
        "sas_url": "https://acct.blob.core.windows.net/c?sv=2024-01-01&sig=signature-value-xyz",
        "anon": False,
    }


SHAPES = [
    "AKIAEXAMPLEKEY",
    "env-secret-0123456789",
    ACCOUNT_KEY,
    "url-password-42",
    "list-token-abcdef",
    "signature-value-xyz",
]


def test_every_shape_is_a_secret(options):
    found = secret_values(options)
    for shape in SHAPES:
        assert any(shape in value for value in found), shape


def test_manifest_view_masks_every_shape_and_keeps_env_references(options):
    shown = safe_options(options)
    text = repr(shown)
    for shape in SHAPES:
        assert shape not in text, shape
    assert shown["secret"] == "${env:SB_SECRET_FROM_ENV}"
    assert shown["client_kwargs"]["endpoint_url"] == "https://***@minio.internal:9000"
    assert shown["anon"] is False


def test_error_strings_are_redacted_wherever_they_go(options):
    message = (
        f"OSError: could not connect to https://alice:url-password-42@minio.internal:9000 "
        f"using {CONNECTION} and env-secret-0123456789"
    )
    redacted = redact(message, secret_values(options))
    for shape in SHAPES:
        assert shape not in redacted, shape
    nested = redact_all({"failed_units": [{"error": message}]}, secret_values(options))
    assert "url-password-42" not in repr(nested) and "minio.internal" in repr(nested)


def test_credentials_in_a_url_are_masked_even_when_not_configured():
    assert "pw" not in redact("GET https://user:pwpwpw@host/x failed", [])


def test_task_arguments_carry_env_references_not_their_values(options, tiny_model, tmp_path):
    """What the plan pickles for its tasks: storage options as written, never expanded."""
    from sarashina_batch.run.model_source import resolve_model
    from sarashina_batch.run.spec import RunSpec
    from sarashina_batch.run.stage_settings import prepare_settings, write_settings
    from tests.support import job_config

    config = job_config(
        str(tmp_path / "in"),
        str(tmp_path / "out"),
        tiny_model,
        input={"storage_options": {"secret": "${env:SB_SECRET_FROM_ENV}"}},
        output={"storage_options": {"secret": "${env:SB_SECRET_FROM_ENV}"}},
    )
    model = resolve_model(tiny_model, None)
    pickled = cloudpickle.dumps(
        (
            prepare_settings(RunSpec.of(config, model)),
            write_settings(RunSpec.of(config, model), {}),
            config.input.storage_options,
        )
    )
    assert b"env-secret-0123456789" not in pickled
    assert b"${env:SB_SECRET_FROM_ENV}" in pickled
    assert expand_env(config.input.storage_options)["secret"] == "env-secret-0123456789"
