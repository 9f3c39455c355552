"""Socket relays that tests cut to make a service "die" from the client's side.

dgm talks to the service through the relay; `cut()` closes the listener and
drops every open connection, which is what a client sees when the service
process dies. The service itself keeps running for the rest of the suite.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading


class Relay:
    """Relays connections to `target` (a Unix socket path, or a (host, port)) until `cut()`."""

    def __init__(self, target):
        self.target = target
        self.unix = isinstance(target, str)
        self.path = os.path.join(tempfile.mkdtemp(prefix="dgm-relay-"), "relay.sock") if self.unix else None
        self.port = 0
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listen()

    def _listen(self) -> None:
        if self.unix:
            self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._server.bind(self.path)
        else:
            self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._server.bind(("127.0.0.1", self.port))
            self.port = self._server.getsockname()[1]
        self._server.listen(64)
        threading.Thread(target=self._accept, args=(self._server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return  # cut
            upstream = socket.socket(socket.AF_UNIX if self.unix else socket.AF_INET, socket.SOCK_STREAM)
            upstream.connect(self.target)
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def cut(self) -> None:
        """The service 'dies': no new connection, every open one dropped."""
        try:
            # close() alone does not wake a thread blocked in accept(): the socket would go on listening.
            self._server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._server.close()
        if self.unix:
            os.unlink(self.path)
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def restore(self) -> None:
        self._listen()


class EngineRelay(Relay):
    """A relay to the Docker engine's Unix socket, and a docker client that uses it."""

    def client(self):
        import docker

        return docker.DockerClient(base_url=f"unix://{self.path}", timeout=120)
