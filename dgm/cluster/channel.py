"""The authenticated channel from a worker node's sandboxes to the head's gateway.

A sandbox anywhere sees what it sees on the head: a Unix socket and its run's
token. On a worker node that socket is a relay's (`Relay`): each connection a
sandbox opens is forwarded over TCP to the head's `ChannelServer`, which hands
it to the gateway as a connection of that sandbox. The keys, the budget and
the records stay on the head; the node holds only the channel's secret.

The secret is made per head session and travels to nodes inside the Ray
tasks (never on disk). A connection is admitted after a mutual HMAC-SHA256
challenge-response over fresh nonces, so neither the secret nor a replayable
answer crosses the wire, and a node will not talk to an impostor head. The
traffic after that is not encrypted: run the cluster on a private network (or
a VPN), as Ray itself requires (docs/cluster.md).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import shutil
import socket
import tempfile
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dgm.llm.gateway import SOCKET_NAME

if TYPE_CHECKING:
    from dgm.llm.gateway import Gateway

GREETING = b"DGM-CHANNEL-1"
HANDSHAKE_TIMEOUT_S = 10.0
MAX_LINE = 512
# A sandbox's label travels in the handshake: the head counts connections per label.
MAX_LABEL = 128


@dataclass(frozen=True)
class ChannelAddress:
    """Where worker nodes reach the head's gateway, and the secret that opens it."""

    host: str
    port: int
    secret: bytes

    def __repr__(self) -> str:  # never print the secret (Ray logs task arguments on failures)
        return f"ChannelAddress({self.host}:{self.port})"


def _answer(secret: bytes, role: bytes, *nonces: bytes) -> bytes:
    return hmac.new(secret, role + b"|" + b"|".join(nonces), hashlib.sha256).hexdigest().encode()


def _read_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError("the channel closed during the handshake")
        data += chunk
        if len(data) > MAX_LINE:
            raise ConnectionError("handshake line too long")
    return data[:-1]


def accept_handshake(sock: socket.socket, secret: bytes) -> str | None:
    """The head's side: the sandbox label of a node that proved it holds the secret, or None."""
    server_nonce = secrets.token_hex(16).encode()
    sock.sendall(GREETING + b" " + server_nonce + b"\n")
    try:
        client_nonce, answer, label = _read_line(sock).split(b" ", 2)
    except ValueError:
        return None
    if (len(client_nonce) != 32 or not label or len(label) > MAX_LABEL
            or not hmac.compare_digest(answer, _answer(secret, b"node", server_nonce, client_nonce))):
        return None
    sock.sendall(_answer(secret, b"head", client_nonce, server_nonce) + b"\n")
    return label.decode("ascii", "replace")


def offer_handshake(sock: socket.socket, secret: bytes, label: str) -> None:
    """The node's side: prove the secret, and check the head proves it too (ConnectionError if not)."""
    greeting, _, server_nonce = _read_line(sock).partition(b" ")
    if greeting != GREETING or len(server_nonce) != 32:
        raise ConnectionError("not a dgm gateway channel")
    client_nonce = secrets.token_hex(16).encode()
    clean = "".join(c for c in label if c.isalnum() or c in "-_.:")[:MAX_LABEL] or "sandbox"
    sock.sendall(client_nonce + b" " + _answer(secret, b"node", server_nonce, client_nonce) + b" "
                 + clean.encode() + b"\n")
    if not hmac.compare_digest(_read_line(sock), _answer(secret, b"head", client_nonce, server_nonce)):
        raise ConnectionError("the head did not prove the channel's secret")


class ChannelServer:
    """The head's TCP listener: authenticated connections go to the gateway."""

    def __init__(self, gateway: Gateway, *, host: str = "0.0.0.0", port: int = 0, advertise: str | None = None):
        self.gateway = gateway
        self.secret = secrets.token_bytes(32)
        self._listener = socket.create_server((host, port), reuse_port=False)
        self._stopped = False
        bound = self._listener.getsockname()
        self.address = ChannelAddress(advertise or _this_host_ip(), bound[1], self.secret)
        self._thread = threading.Thread(target=self._accept, name="dgm-channel", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        _accept_each(self._listener, self._admit, lambda: not self._stopped)

    def _admit(self, sock: socket.socket) -> None:
        try:
            sock.settimeout(HANDSHAKE_TIMEOUT_S)
            label = accept_handshake(sock, self.secret)
            sock.settimeout(None)
        except OSError:
            label = None
        if label is None:
            sock.close()
            return
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.gateway.serve_relayed(sock, label)

    def stop(self) -> None:
        self._stopped = True
        try:
            self._listener.close()
        except OSError:
            pass


def _accept_each(listener: socket.socket, handle, running=lambda: True) -> None:
    """Hand each connection `listener` accepts to `handle` in a thread of its own, while `running()`,
    until the listener is closed."""
    while running():
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def _this_host_ip() -> str:
    """This machine's address on the network Ray uses (its own idea when Ray is up)."""
    try:
        import ray

        if ray.is_initialized():
            return ray.util.get_node_ip_address()
    except ImportError:
        pass
    return socket.gethostbyname(socket.gethostname())


class Relay:
    """On a worker node, for one sandbox: a Unix socket in a directory of its
    own (mounted into the sandbox like the head's gateway directory) whose
    connections are forwarded to the head's channel."""

    def __init__(self, address: ChannelAddress, label: str):
        self.address, self.label = address, label
        self.socket_dir = tempfile.mkdtemp(prefix="dgm-relay-")
        os.chmod(self.socket_dir, 0o755)
        path = os.path.join(self.socket_dir, SOCKET_NAME)
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(path)
        os.chmod(path, 0o666)
        self._listener.listen(64)
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name="dgm-relay", daemon=True)
        self._thread.start()

    def check(self) -> None:
        """Reach the head once before the sandbox starts: a node that cannot is
        not fit for runs (ConnectionError / OSError with the reason)."""
        with socket.create_connection((self.address.host, self.address.port), timeout=HANDSHAKE_TIMEOUT_S) as up:
            offer_handshake(up, self.address.secret, self.label)

    def _accept(self) -> None:
        _accept_each(self._listener, self._forward)

    def _forward(self, inner: socket.socket) -> None:
        try:
            up = socket.create_connection((self.address.host, self.address.port), timeout=HANDSHAKE_TIMEOUT_S)
            offer_handshake(up, self.address.secret, self.label)
            up.settimeout(None)
            up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            inner.close()  # the agent sees a closed connection, as when the gateway is gone
            return
        with self._lock:
            self._open.update((inner, up))
        back = threading.Thread(target=_pipe, args=(up, inner), daemon=True)
        back.start()
        _pipe(inner, up)
        back.join()
        with self._lock:
            self._open.difference_update((inner, up))
        inner.close()
        up.close()

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for sock in self._open:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        shutil.rmtree(self.socket_dir, ignore_errors=True)

    def __enter__(self) -> "Relay":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    """Copy until `src` ends, then pass the end on (half-close)."""
    try:
        while True:
            data = src.recv(1 << 16)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass
