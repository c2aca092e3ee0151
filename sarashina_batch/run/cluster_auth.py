"""Ray's token authentication, as it meets a job joining a cluster.

Ray 2.60 turns token authentication on for a `ray start` head when a token exists on its
machine (~/.ray/auth_token), and KubeRay does for a RayCluster with `authOptions.mode: token`.
A driver that joins such a cluster without the token fails after about 20 s with
`ConnectionError: Failed to connect to Ray cluster at ...`; only Ray's own log lines say
`InvalidAuthToken`. This module asks the cluster's head directly (one gRPC call, no token),
so that the job can say what went wrong and name the fix before and after Ray tries.
"""

from __future__ import annotations

import os
from pathlib import Path

AUTH_MODE = "RAY_AUTH_MODE"
TOKEN_VARIABLES = ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
DEFAULT_TOKEN_FILE = Path("~/.ray/auth_token")


def token_mode_on() -> bool:
    """Whether this process would send a token: Ray does only when RAY_AUTH_MODE=token."""
    return os.environ.get(AUTH_MODE, "").lower() == "token"


def head_refuses(address: str, timeout_s: float = 5.0) -> bool | None:
    """Whether the head at host:port refuses this process for its token (none sent, unless
    RAY_AUTH_MODE=token; or the wrong one): True or False when it answered, None when it could
    not be asked (not a host:port, not answering, a Ray that moved these internals)."""
    host, _, port = address.rpartition(":")
    if not host or "://" in host or not port.isdigit():  # ray:// (Ray Client), auto: not a head to ask
        return None
    try:
        import grpc
        from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

        metadata = _token_header() if token_mode_on() else ()
    except Exception:  # noqa: BLE001 - internals of another Ray release: nothing to tell
        return None
    channel = grpc.insecure_channel(f"{host.strip('[]')}:{port}")
    try:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        stub.GetClusterId(gcs_service_pb2.GetClusterIdRequest(), timeout=timeout_s, metadata=metadata)
        return False
    except grpc.RpcError as err:
        return True if err.code() == grpc.StatusCode.UNAUTHENTICATED else None
    finally:
        channel.close()


def _token_header() -> tuple[tuple[str, str], ...]:
    """The authorization header Ray itself would send (its token loader reads RAY_AUTH_TOKEN,
    RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token, in that order)."""
    from ray._raylet import AuthenticationTokenLoader

    loader = AuthenticationTokenLoader.instance()
    return tuple(loader.get_token_for_http_header().items()) if loader.has_token() else ()


def where_the_token_comes_from() -> str:
    """The token this process would send, in words (never the token itself)."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return f"the file RAY_AUTH_TOKEN_PATH names ({os.environ['RAY_AUTH_TOKEN_PATH']})"
    return f"{DEFAULT_TOKEN_FILE} ({'present' if DEFAULT_TOKEN_FILE.expanduser().exists() else 'absent'})"


def refusal_message(address: str) -> str:
    """What to tell a user whose job the cluster at `address` refused for want of a token."""
    fix = (
        "copy the cluster's token (on the head: `ray get-auth-token`, or the Secret KubeRay made for "
        "`authOptions.mode: token`) into RAY_AUTH_TOKEN, a file RAY_AUTH_TOKEN_PATH names, or ~/.ray/auth_token"
    )
    if not token_mode_on():
        return (
            f"the Ray cluster at {address} requires token authentication, and this job sends no token "
            f"({AUTH_MODE} is {os.environ.get(AUTH_MODE) or 'unset'}). Set {AUTH_MODE}=token and {fix}; "
            "`ray job submit` needs the same two to reach the cluster, and passes them to the job"
        )
    return (
        f"the Ray cluster at {address} refused this job's authentication token (read from "
        f"{where_the_token_comes_from()}): it is not the cluster's token. {AUTH_MODE}=token is set; {fix}"
    )
