"""A TCP endpoint on loopback that accepts connections, reads what it is sent and never
answers: a store that stops answering."""

from __future__ import annotations

import socket
import threading


class BlackHole:
    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections: list[socket.socket] = []
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        self.server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                connection, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:  # closed
                return
            connection.settimeout(0.2)
            self.connections.append(connection)  # held open, read from, never answered

    def close(self) -> None:
        self._stop.set()
        for connection in self.connections:
            connection.close()
        self.server.close()
