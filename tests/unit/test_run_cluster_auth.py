"""What a job joining a cluster with token authentication is told (the cluster itself is in
tests/e2e/test_run_cluster_auth.py)."""

import socket

import pytest

from sarashina_batch.run.cluster_auth import head_refuses, refusal_message


@pytest.fixture
def no_ray_auth(monkeypatch):
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_without_token_mode_the_message_names_both_settings(no_ray_auth):
    said = refusal_message("10.0.0.1:6379")
    assert "the Ray cluster at 10.0.0.1:6379 requires token authentication" in said
    assert "RAY_AUTH_MODE is unset" in said and "Set RAY_AUTH_MODE=token" in said
    assert "RAY_AUTH_TOKEN" in said and "~/.ray/auth_token" in said and "ray job submit" in said


def test_with_token_mode_the_message_says_where_the_refused_token_came_from(no_ray_auth, tmp_path):
    no_ray_auth.setenv("RAY_AUTH_MODE", "token")
    no_ray_auth.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "token"))
    said = refusal_message("10.0.0.1:6379")
    assert "refused this job's authentication token" in said and str(tmp_path / "token") in said
    no_ray_auth.setenv("RAY_AUTH_TOKEN", "s3cr3t-token-value")
    said = refusal_message("10.0.0.1:6379")
    assert "(read from RAY_AUTH_TOKEN)" in said and "s3cr3t-token-value" not in said


def test_only_a_head_that_answers_is_asked(no_ray_auth):
    assert head_refuses("auto") is None
    assert head_refuses("ray://10.0.0.1:10001") is None
    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    assert head_refuses(f"127.0.0.1:{port}", timeout_s=1) is None
