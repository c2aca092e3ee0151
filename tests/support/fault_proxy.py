"""An HTTP proxy on loopback in front of an S3 server that injects the faults object stores
show: `503 SlowDown`, connections reset in the middle of a response body, and stalled
responses. Each request draws its fate from a seeded random generator; the proxy counts
what it did."""

from __future__ import annotations

import http.client
import random
import socket
import struct
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


class FaultProxy:
    def __init__(
        self, upstream_port: int, slow_down: float, reset: float, stall: float, stall_s: float = 3.0, seed: int = 0
    ):
        self.rates = {"slow_down": slow_down, "reset": reset, "stall": stall}
        self.stall_s, self.random, self.lock = stall_s, random.Random(seed), threading.Lock()
        self.faults: Counter[str] = Counter()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _forward(self) -> None:
                body = self._body()
                fate = proxy._draw()
                if fate == "slow_down":
                    self._send(503, {"Content-Type": "application/xml"}, SLOW_DOWN)
                    return
                if fate == "stall":
                    time.sleep(proxy.stall_s)
                upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=120)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "transfer-encoding"}
                headers["Content-Length"] = str(len(body))
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                upstream.close()
                sent = {
                    k: v
                    for k, v in response.getheaders()
                    if k.lower() not in ("transfer-encoding", "content-length", "connection")
                }
                if fate == "reset" and len(data) > 1:
                    self._reset_mid_body(response.status, sent, data)
                    return
                # A HEAD answer has no body but the length of the one a GET would have.
                length = response.getheader("Content-Length") if self.command == "HEAD" else None
                self._send(response.status, sent, data, length)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while (size := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    return b"".join(chunks)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _send(self, status: int, headers: dict, data: bytes, length: str | None = None) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", length if length is not None else str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _reset_mid_body(self, status: int, headers: dict, data: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                # SO_LINGER 0: close with a TCP reset, as a dropped connection looks.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _draw(self) -> str | None:
        with self.lock:
            roll = self.random.random()
            for fate, rate in self.rates.items():
                if roll < rate:
                    self.faults[fate] += 1
                    return fate
                roll -= rate
            self.faults["none"] += 1
            return None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
