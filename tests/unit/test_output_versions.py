"""Versioned output URIs: placeholders resolve to path-safe values, an unknown one is a config
error.

Moved from tests/e2e/test_output_versions.py (they need no run). The versioned runs (latest
moving only after a complete newer run) stay there: see that file for why."""

import pytest

from sarashina_batch.config import ConfigError, load_config
from sarashina_batch.output.versions import output_root, resolve_uri, version_values
from sarashina_batch.run.model_source import ResolvedModel


def test_placeholders_resolve_to_path_safe_values():
    hub = ResolvedModel("sbintuitions/sarashina-embedding-v2-1b", "0123456789abcdef0123", "d" * 64, "0123456789ab")
    values = version_values(hub, "f" * 16)
    assert values == {
        "model": "sbintuitions--sarashina-embedding-v2-1b",
        "revision": "0123456789ab",
        "fingerprint": "f" * 16,
    }
    local = version_values(ResolvedModel("/models/tiny sarashina/", "local", "abcdef0123456789" * 4, None), "1" * 16)
    assert (local["model"], local["revision"]) == ("tiny-sarashina", "local-abcdef012345")
    template = "s3://b/emb/{model}/{revision}/{fingerprint}"
    assert output_root(template) == "s3://b/emb"
    assert (
        resolve_uri(template, values) == f"s3://b/emb/sbintuitions--sarashina-embedding-v2-1b/0123456789ab/{'f' * 16}"
    )
    assert output_root("out/web-{model}@{revision}") == "out"


def test_an_unknown_placeholder_is_a_config_error(tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"unknown placeholder\(s\) \{date\} in output.uri; use \{model\}, "
        r"\{revision\}, \{fingerprint\}",
    ):
        load_config(None, {"input.uri": "in", "output.uri": "out/{model}/{date}"})
