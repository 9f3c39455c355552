"""The channel from a worker node's sandboxes to the head's gateway: only a
node holding the session's secret gets through, the head proves it holds it
too, and what a sandbox sends arrives unchanged under its sandbox's label."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from dgm.cluster.channel import ChannelAddress, ChannelServer, Relay, accept_handshake
from dgm.llm.gateway import SOCKET_NAME


class EchoGateway:
    """Stands in for `Gateway.serve_relayed`: answers each line with its label and the line."""

    def __init__(self):
        self.labels: list[str] = []
        self.served = threading.Event()

    def serve_relayed(self, sock: socket.socket, sandbox: str) -> None:
        self.labels.append(sandbox)
        self.served.set()
        with sock:
            received = b""
            while chunk := sock.recv(4096):
                received += chunk
            sock.sendall(sandbox.encode() + b" " + received)


def _talk(relay: Relay, message: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(os.path.join(relay.socket_dir, SOCKET_NAME))
        sock.sendall(message)
        sock.shutdown(socket.SHUT_WR)
        out = b""
        try:
            while chunk := sock.recv(4096):
                out += chunk
        except ConnectionResetError:
            pass  # refused: closed with the request unread
        return out


@pytest.fixture
def head():
    gateway = EchoGateway()
    server = ChannelServer(gateway, host="127.0.0.1", advertise="127.0.0.1")
    yield gateway, server
    server.stop()


def test_a_relay_with_the_secret_forwards_both_ways_under_its_sandbox_label(head):
    gateway, server = head
    with Relay(server.address, "run-42") as relay:
        relay.check()
        assert _talk(relay, b"POST /v1/chat/completions\n") == b"run-42 POST /v1/chat/completions\n"
        # The sandbox's unprivileged user must reach the socket.
        assert os.stat(relay.socket_dir).st_mode & 0o005 == 0o005
    assert gateway.labels == ["run-42", "run-42"]  # the check, then the sandbox's own connection


def test_a_node_without_the_secret_is_refused_before_the_gateway_sees_anything(head):
    gateway, server = head
    wrong = ChannelAddress(server.address.host, server.address.port, b"x" * 32)
    with Relay(wrong, "run-1") as relay:
        with pytest.raises(ConnectionError):
            relay.check()
        assert _talk(relay, b"GET /v1/models\n") == b""  # the sandbox sees a closed connection
    assert not gateway.served.is_set()


def test_a_head_that_does_not_prove_the_secret_is_not_talked_to():
    """An impostor listening where the head should be gets no request (and so no token) from a node."""
    listener = socket.create_server(("127.0.0.1", 0))
    received = []

    def impostor():
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(5)
            conn.sendall(b"DGM-CHANNEL-1 " + b"0" * 32 + b"\n")
            line = conn.recv(1024)
            conn.sendall(b"f" * 64 + b"\n")  # a made-up proof
            try:
                received.append(line + conn.recv(1024))
            except OSError:
                pass

    thread = threading.Thread(target=impostor, daemon=True)
    thread.start()
    address = ChannelAddress("127.0.0.1", listener.getsockname()[1], b"s" * 32)
    with Relay(address, "run-7") as relay:
        with pytest.raises(ConnectionError, match="did not prove"):
            relay.check()
    thread.join(5)
    listener.close()
    assert received and b"POST" not in received[0]


def test_a_handshake_answer_cannot_be_replayed():
    """Fresh nonces each time: an answer recorded from one handshake opens no other."""
    secret = b"k" * 32
    a, b = socket.socketpair()
    with a, b:
        a.settimeout(5)
        b.settimeout(5)
        result = {}
        thread = threading.Thread(target=lambda: result.setdefault("label", accept_handshake(a, secret)))
        thread.start()
        greeting = b.recv(1024)
        nonce = greeting.split()[1]
        # A replayed answer computed for another server nonce.
        from dgm.cluster.channel import _answer

        stale = _answer(secret, b"node", b"1" * 32, b"2" * 32)
        b.sendall(b"2" * 32 + b" " + stale + b" run\n")
        thread.join(5)
        assert nonce != b"1" * 32 and result["label"] is None


def test_the_channel_address_never_prints_its_secret():
    address = ChannelAddress("10.0.0.5", 4242, b"top-secret-bytes")
    assert "top-secret" not in repr(address) and "top-secret" not in str(address)
