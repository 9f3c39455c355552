"""The only way out of a sandbox: an OpenAI-compatible endpoint on a Unix socket.

The socket's directory is bind-mounted into each sandbox. A sandboxed agent
sends `POST /v1/chat/completions` with a per-run bearer token; the gateway
maps the token to its run (campaign, agent, task run, purpose, model), and
the host-side `LLMClient` makes the real call. API keys never leave the host,
the agent cannot choose a dearer model than it was granted, and a revoked
token (run finished) gets 401.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import selectors
import shutil
import socket
import socketserver
import struct
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler

from dgm.errors import BudgetExceeded, ModelUnavailable
from dgm.llm.client import CallContext, LLMClient, UpstreamError, holds_lone_surrogates

SOCKET_NAME = "llm.sock"
CONTAINER_SOCKET_DIR = "/run/dgm-gateway"
CONTAINER_SOCKET = f"{CONTAINER_SOCKET_DIR}/{SOCKET_NAME}"
MAX_REQUEST_BYTES = 20_000_000
# An oversized body is read and dropped up to this much before the 413, so
# the agent gets the answer; past it the connection is just closed.
DISCARD_AT_MOST_BYTES = 256_000_000
ALLOWED_PARAMS = ("temperature", "top_p", "max_tokens", "stop", "seed", "n")
ROLES = ("system", "developer", "user", "assistant", "tool", "function")
MAX_CHOICES = 16


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_request(body) -> tuple[list[dict], dict]:
    """The messages and parameters of an agent's request, or ValueError saying what is wrong.

    The agent is untrusted: a request litellm would choke on (a message whose
    content is a number, a max_tokens of 5.5) is refused here with a 400 the
    agent can read, rather than reach the provider as a "connection error"
    that is retried, taken for an outage, and stops the campaign, or slip past
    the budget's max_tokens.
    """
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages must be a non-empty list of {role, content}")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise ValueError(f"messages[{i}] must be an object whose role is one of {', '.join(ROLES)}")
        content = message.get("content")
        if content is None or isinstance(content, str):
            continue
        if not isinstance(content, list) or not all(
                isinstance(part, dict) and isinstance(part.get("type"), str)
                and (part["type"] != "text" or "text" in part)
                and ("text" not in part or isinstance(part["text"], str)) for part in content):
            raise ValueError(f"messages[{i}].content must be a string or a list of content parts")
    if holds_lone_surrogates(messages):
        raise ValueError("messages hold text that is not valid Unicode (a lone surrogate)")
    params = {k: body[k] for k in ALLOWED_PARAMS if body.get(k) is not None}
    for name in ("temperature", "top_p"):
        if name in params and not (_is_number(params[name]) and math.isfinite(params[name])):
            raise ValueError(f"{name} must be a finite number")
    if "max_tokens" in params and not (_is_int(params["max_tokens"]) and params["max_tokens"] > 0):
        raise ValueError("max_tokens must be a positive integer")
    if "n" in params and not (_is_int(params["n"]) and 1 <= params["n"] <= MAX_CHOICES):
        raise ValueError(f"n must be an integer from 1 to {MAX_CHOICES}")
    if "seed" in params and not _is_int(params["seed"]):
        raise ValueError("seed must be an integer")
    stop = params.get("stop")
    if stop is not None and not (isinstance(stop, str) or (
            isinstance(stop, list) and len(stop) <= 4 and all(isinstance(x, str) for x in stop))):
        raise ValueError("stop must be a string or a list of up to 4 strings")
    return messages, params


# An agent is untrusted code and each connection costs the host a thread:
# each sandbox may hold this many at once (more are refused with a 429), and
# all sandboxes together this many, so no agent can exhaust the host's
# threads or starve the other sandboxes' calls.
MAX_CONNECTIONS_PER_SANDBOX = 16
MAX_CONNECTIONS = 512
# A connection whose next request has not arrived within this is closed.
REQUEST_TIMEOUT_S = 120.0
_REFUSED_BODY = json.dumps({"error": {"message": "too many open connections from this sandbox",
                                      "type": "rate_limit_error"}}).encode()
_REFUSED = (b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(_REFUSED_BODY), _REFUSED_BODY))
# A refused connection stays open this long, its write side shut and its input
# dropped, so a client still sending its request reads the 429 rather than a
# broken pipe; at most this many linger at once, the rest are closed at once.
REFUSED_LINGER_S = 2.0
MAX_LINGERING = 256


def _refuse_constant(name: str):
    """NaN and Infinity are not JSON: anywhere in a request (not only where
    `parse_request` looks), they would reach the transcript, which must stay JSON."""
    raise ValueError(f"{name} is not valid JSON")


def _peer_sandbox(sock: socket.socket) -> str:
    """Which sandbox a connection comes from: its process's control group (one
    per container; world-readable, so this works when dgm is not root). The
    kernel reports the peer's pid as the host sees it."""
    try:
        pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                            struct.calcsize("3i")))
    except OSError:
        return "unknown"
    try:
        with open(f"/proc/{pid}/cgroup") as fh:
            return fh.read()
    except OSError:  # gone already: one shared allowance per uid
        return f"uid:{uid}"


class _Refuser:
    """Holds refused connections (the 429 already sent) until their peers
    close or the linger ends, on one thread whatever their number."""

    def __init__(self):
        self._wake = threading.Condition()
        self._arrived: list[tuple[socket.socket, float]] = []
        self._held: dict[socket.socket, float] = {}
        self._selector = selectors.DefaultSelector()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="dgm-gateway-refuser", daemon=True)
        self._thread.start()

    def hold(self, sock: socket.socket) -> bool:
        """Take `sock` over; False (the caller closes it) when too many linger."""
        with self._wake:
            if self._stopped or len(self._arrived) + len(self._held) >= MAX_LINGERING:
                return False
            self._arrived.append((sock, time.monotonic() + REFUSED_LINGER_S))
            self._wake.notify()
        return True

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
        self._thread.join(5)

    def _release(self, sock: socket.socket) -> None:
        self._selector.unregister(sock)
        with self._wake:
            del self._held[sock]
        sock.close()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not (self._arrived or self._held or self._stopped):
                    self._wake.wait()  # idle: no polling
                arrived, self._arrived = self._arrived, []
                for sock, deadline in arrived:
                    self._held[sock] = deadline
                stopped = self._stopped
            for sock, _ in arrived:
                self._selector.register(sock, selectors.EVENT_READ)
            if stopped:
                break
            for key, _ in self._selector.select(timeout=0.1):
                try:
                    more = key.fileobj.recv(1 << 16)
                except OSError:
                    more = b""
                if not more:  # the peer has read the 429 and closed
                    self._release(key.fileobj)
            now = time.monotonic()
            for sock in [s for s, deadline in list(self._held.items()) if deadline <= now]:
                self._release(sock)
        for sock in list(self._held):
            self._release(sock)
        self._selector.close()


class _UnixHTTPServer(socketserver.UnixStreamServer):
    """A thread per connection, within per-sandbox and total caps."""

    def __init__(self, path: str, handler, *, per_sandbox: int, total: int):
        super().__init__(path, handler)
        self.per_sandbox, self.total = per_sandbox, total
        self._slots_lock = threading.Lock()
        self.open_by_sandbox: dict[str, int] = {}
        self.refused = 0
        self._refuser = _Refuser()

    def process_request(self, request, client_address) -> None:
        self.admit(request, client_address, _peer_sandbox(request))

    def admit(self, request, client_address, peer: str) -> None:
        """Serve `request` as a connection of sandbox `peer`, within the caps."""
        with self._slots_lock:
            full = (self.open_by_sandbox.get(peer, 0) >= self.per_sandbox
                    or sum(self.open_by_sandbox.values()) >= self.total)
            if full:
                self.refused += 1
            else:
                self.open_by_sandbox[peer] = self.open_by_sandbox.get(peer, 0) + 1
        if full:
            try:
                request.setblocking(False)  # a peer that does not read cannot hold this thread
                request.send(_REFUSED)
                request.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            if not self._refuser.hold(request):
                self.shutdown_request(request)
            return
        threading.Thread(target=self._serve, args=(request, client_address, peer), daemon=True).start()

    def server_close(self) -> None:
        super().server_close()
        self._refuser.stop()

    def _serve(self, request, client_address, peer: str) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001 - a broken connection is the peer's problem
            pass
        finally:
            self.shutdown_request(request)
            with self._slots_lock:
                left = self.open_by_sandbox.get(peer, 1) - 1
                if left:
                    self.open_by_sandbox[peer] = left
                else:
                    self.open_by_sandbox.pop(peer, None)


class Gateway:
    def __init__(self, client: LLMClient, *, max_connections_per_sandbox: int = MAX_CONNECTIONS_PER_SANDBOX,
                 max_connections: int = MAX_CONNECTIONS, request_timeout_s: float = REQUEST_TIMEOUT_S):
        self.client = client
        self.max_connections_per_sandbox = max_connections_per_sandbox
        self.max_connections = max_connections
        self.request_timeout_s = request_timeout_s
        self._grants: dict[str, CallContext] = {}
        self._budget_hits: set[str] = set()
        self._outages: dict[str, str] = {}
        self._overflows: dict[str, str] = {}
        self._lock = threading.Lock()
        self.socket_dir = tempfile.mkdtemp(prefix="dgm-gateway-")
        # The agent runs as an unprivileged uid inside the container: it must
        # be able to reach the socket, and nothing else in this directory.
        os.chmod(self.socket_dir, 0o755)
        self.socket_path = os.path.join(self.socket_dir, SOCKET_NAME)
        self._server: _UnixHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- tokens ------------------------------------------------------------
    def grant(self, ctx: CallContext) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._grants[token] = ctx
        return token

    def revoke(self, token: str) -> None:
        with self._lock:
            self._grants.pop(token, None)

    def note_context_overflow(self, token: str, error: str) -> None:
        with self._lock:
            self._overflows.setdefault(token, error)

    def take_context_overflow(self, token: str) -> str | None:
        """The first context-length error a run's calls met, if any (once: it is
        forgotten here). The run's error carries it, which is what points the
        diagnosis at the context-overflow target."""
        with self._lock:
            return self._overflows.pop(token, None)

    def note_budget_hit(self, token: str) -> None:
        with self._lock:
            self._budget_hits.add(token)

    def note_outage(self, token: str, error: str) -> None:
        with self._lock:
            self._outages.setdefault(token, error)

    def note_answer(self, token: str) -> None:
        """A call answered: an earlier outage in this run is over, and the
        agent carried on from it, so its result stands."""
        if self._outages:
            with self._lock:
                self._outages.pop(token, None)

    def raise_if_run_spoiled(self, token: str) -> None:
        """After a run: if the budget stopped any of its calls, or the model was
        down at the end (a call failed through every retry, and no later call
        was answered), its result is not the agent's.

        Raises BudgetExceeded or ModelUnavailable; the caller then leaves the run
        unfinished, so a resumed campaign (with a larger budget, or once the
        provider is back) redoes it rather than keeping a truncated result.
        """
        with self._lock:
            hit = token in self._budget_hits
            self._budget_hits.discard(token)
            outage = self._outages.pop(token, None)
        if hit:
            raise BudgetExceeded("the budget ran out during this run")
        if outage is not None:
            raise ModelUnavailable(outage)

    def context(self, token: str) -> CallContext | None:
        with self._lock:
            return self._grants.get(token)

    # -- server ------------------------------------------------------------
    def start(self) -> "Gateway":
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = self.request_timeout_s  # idle or trickling connections end

            def log_message(self, *args):  # the archive is the log
                pass

            def address_string(self):  # Unix sockets have no peer address
                return "sandbox"

            def _reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, message: str, kind: str) -> None:
                self._reply(status, {"error": {"message": message, "type": kind}})

            def _discard(self, length: int) -> None:
                left = min(length, DISCARD_AT_MOST_BYTES)
                try:
                    while left > 0:
                        chunk = self.rfile.read(min(left, 1 << 20))
                        if not chunk:
                            break
                        left -= len(chunk)
                except OSError:
                    pass

            def do_GET(self):
                if self.path.rstrip("/") == "/health":
                    self._reply(200, {"ok": True})
                else:
                    self._error(404, "not found", "not_found")

            def do_POST(self):
                if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                    return self._error(404, "only POST /v1/chat/completions exists", "not_found")
                auth = self.headers.get("Authorization", "")
                token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
                ctx = gateway.context(token)
                if ctx is None:
                    return self._error(401, "invalid or expired token", "authentication_error")
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if length <= 0:
                    return self._error(400, "request body missing", "invalid_request_error")
                if length > MAX_REQUEST_BYTES:
                    self.close_connection = True
                    self._discard(length)  # so the agent reads the answer rather than a broken pipe
                    return self._error(413, f"request body larger than {MAX_REQUEST_BYTES} bytes",
                                       "invalid_request_error")
                try:
                    messages, params = parse_request(json.loads(self.rfile.read(length),
                                                                parse_constant=_refuse_constant))
                except (ValueError, RecursionError) as exc:
                    return self._error(400, f"malformed request: {exc}", "invalid_request_error")
                try:
                    response = gateway.client.complete(ctx, messages, **params)
                except BudgetExceeded as exc:
                    gateway.note_budget_hit(token)
                    return self._error(402, str(exc), "budget_exhausted")
                except UpstreamError as exc:
                    if exc.context_overflow:
                        # A 400 the agent can act on (drop old turns, retry), in
                        # OpenAI's own wording so agents written for it understand.
                        gateway.note_context_overflow(token, str(exc))
                        return self._error(400, str(exc), "context_length_exceeded")
                    if exc.outage:
                        gateway.note_outage(token, f"the model {ctx.model} was unavailable during a run: {exc}")
                    return self._error(502, str(exc), "upstream_error")
                except Exception as exc:  # noqa: BLE001 - never kill the server thread
                    return self._error(500, f"gateway error: {type(exc).__name__}: {exc}", "server_error")
                gateway.note_answer(token)
                self._reply(200, response)

        self._server = _UnixHTTPServer(self.socket_path, Handler, per_sandbox=self.max_connections_per_sandbox,
                                       total=self.max_connections)
        os.chmod(self.socket_path, 0o666)
        self._thread = threading.Thread(target=self._server.serve_forever, name="dgm-gateway", daemon=True)
        self._thread.start()
        # litellm takes seconds to import: pay that now, not inside a timed agent run.
        from dgm.llm.litellm_loader import start_loading_litellm

        start_loading_litellm()
        return self

    def serve_relayed(self, sock: socket.socket, sandbox: str) -> None:
        """Serve a connection a worker node's relay forwarded from one of its
        sandboxes (`dgm.cluster.channel`, which authenticated it), as that
        sandbox's: the same tokens, caps and records as a local one."""
        server = self._server
        if server is None:
            sock.close()
            return
        server.admit(sock, ("relay", sandbox), f"relay:{sandbox}")

    def connections(self) -> dict:
        """Open connections per sandbox (control group), and how many were refused."""
        server = self._server
        if server is None:
            return {"open": {}, "refused": 0}
        with server._slots_lock:
            return {"open": dict(server.open_by_sandbox), "refused": server.refused}

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        shutil.rmtree(self.socket_dir, ignore_errors=True)

    def __enter__(self) -> "Gateway":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
