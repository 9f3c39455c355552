"""`dgm serve`: a read-only JSON API over the archive plus the explorer's static files.

Standard library HTTP server (one thread per request): the archive store is
thread-safe (a session per call, detached rows), and the only shared state
here, the per-campaign graph cache, sits behind a lock. Only GET exists, so
nothing a browser sends can change the archive. Every asset is served from
this package: the page works with no network at all.

API (all JSON):
  /api/campaigns                         campaigns with agent counts and best scores
  /api/campaigns/<id>/graph              the lineage as parallel arrays (compact for 100k agents)
  /api/campaigns/<id>/version            a fingerprint that changes when the campaign does (live refresh)
  /api/campaigns/<id>/series             best/mean score, coverage, diversity, spend per generation
  /api/agents/<id>                       details, diff vs parent
  /api/diff?a=<id>&b=<id>                diff between two agents' code
  /api/heatmap?agents=<id>,<id>,...      latest status per task for each agent
  /api/runs/<id>                         one task run with its trajectory and LLM calls
  /api/llm_calls/<id>                    one LLM call's request and response
"""

from __future__ import annotations

import json
import mimetypes
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from dgm.errors import DgmError, NotFound, UsageError

if TYPE_CHECKING:
    from dgm.archive.store import ArchiveStore

STATIC_DIR = Path(__file__).with_name("static")
MAX_DIFF_CHARS = 400_000
MAX_HEATMAP_AGENTS = 200
STATUS_CODES = ("seed", "pending", "self_modifying", "evaluating", "admitted", "rejected", "twin")


class ExplorerApi:
    """The API's logic, separate from HTTP so it is easy to test and to reuse."""

    def __init__(self, store: ArchiveStore):
        self.store = store
        self._lock = threading.Lock()
        self._graphs: dict[str, tuple[str, bytes]] = {}
        self._series: dict[str, tuple[str, Any]] = {}

    # -- campaigns -------------------------------------------------------------

    def campaigns(self) -> list[dict[str, Any]]:
        from dgm.liveness import shown_status

        from dgm.stats.intervals import score_label

        overview = self.store.campaign_overview()
        best_ids = self.store.best_agents()
        counts = self.store.score_counts(agent_ids=list(best_ids.values())) if best_ids else {}
        unpriced = self.store.unpriced_calls("campaign_id")
        out = []
        for c in self.store.list_campaigns():
            row = {"id": c.id, "name": c.name, "kind": c.kind, "status": shown_status(c), "spent_usd": c.spent_usd,
                   "unpriced_calls": unpriced.get(c.id, 0), "budget_usd": c.budget_usd, "created_at": c.created_at.isoformat(),
                   **overview.get(c.id, {"agents": 0, "admitted": 0, "best_score": None})}
            resolved, n = counts.get(best_ids.get(c.id), {}).get("score", (0, 0))
            row["best_label"] = score_label(row["best_score"], resolved, n)  # with its interval and n
            out.append(row)
        return out

    def version(self, campaign_id: str) -> dict[str, Any]:
        from dgm.liveness import shown_status

        campaign = self.store.get_campaign(campaign_id)
        # `running?`: marked running, but its runner is gone; the page must not say "live".
        return {"version": self.store.campaign_fingerprint(campaign.id), "status": shown_status(campaign)}

    def _cached(self, cache: dict, campaign_id: str, build):
        """`build(campaign, fingerprint)`, kept until the campaign's fingerprint changes."""
        campaign = self.store.get_campaign(campaign_id)
        version = self.store.campaign_fingerprint(campaign.id)
        with self._lock:
            cached = cache.get(campaign.id)
        if cached and cached[0] == version:
            return cached[1]
        value = build(campaign, version)
        with self._lock:
            cache[campaign.id] = (version, value)
        return value

    def graph_bytes(self, campaign_id: str) -> bytes:
        """The lineage payload, rebuilt only when the campaign's fingerprint changes."""
        return self._cached(self._graphs, campaign_id, self._build_graph)

    def _build_graph(self, campaign, version: str) -> bytes:
        from dgm.lineage.forest import Lineage
        from dgm.llm.model_names import is_scripted

        lin = Lineage.load(self.store, campaign.id)
        counts = self.store.task_run_counts(campaign.id)
        model = (campaign.config or {}).get("model")
        rows = lin.rows
        status_index = {s: i for i, s in enumerate(STATUS_CODES)}
        payload = {
            "campaign": {"id": campaign.id, "name": campaign.name, "kind": campaign.kind, "status": campaign.status,
                         "spent_usd": campaign.spent_usd, "budget_usd": campaign.budget_usd,
                         "spend_by_role": self.store.spend_by_purpose(campaign.id), "model": model,
                         "unpriced_calls": self.store.unpriced_calls("campaign_id", campaign_id=campaign.id).get(
                             campaign.id, 0),
                         "scripted": isinstance(model, str) and is_scripted(model)},
            "version": version,
            "ids": [r.id for r in rows],
            "parent": lin.parent,
            "generation": [r.generation for r in rows],
            "score": [None if r.score is None else round(r.score, 4) for r in rows],
            # As every view writes a score: `0.73 [0.55–0.86] n=22` (95 % Wilson interval).
            "score_label": [None if r.score is None else lin.score_label(i) for i, r in enumerate(rows)],
            "status": [status_index.get(r.status, 0) for r in rows],
            "statuses": list(STATUS_CODES),
            "runs": [counts.get(r.id, 0) for r in rows],
            # Row of the agent whose code a twin's equals (-1: not a twin, or its original is not shown).
            "twin_of": [lin.index.get(r.twin_of, -1) if r.twin_of else -1 for r in rows],
            "best_path": lin.path_to(lin.best()),
        }
        return json.dumps(payload, separators=(",", ":")).encode()

    def series(self, campaign_id: str) -> dict[str, Any]:
        return self._cached(self._series, campaign_id, self._build_series)

    def _build_series(self, campaign, version: str) -> dict[str, Any]:
        from dgm.lineage.plot import generation_series

        points, source = generation_series(self.store, campaign.id)
        unpriced = self.store.unpriced_calls("campaign_id", campaign_id=campaign.id).get(campaign.id, 0)
        return {"source": source, "points": [p.as_dict() for p in points], "unpriced_calls": unpriced}

    # -- agents ----------------------------------------------------------------

    def agent(self, agent_id: str) -> dict[str, Any]:
        from dgm.lineage.details import agent_details

        from dgm.stats.intervals import rate_label, score_label

        details = agent_details(self.store, agent_id)
        details["calls_outside_runs"] = details["calls_outside_runs"][:MAX_LISTED_CALLS]
        # Scores as every view writes them, with their 95 % Wilson interval and n.
        for key, fields in (("score", details["score_interval"]), ("heldout", details["heldout_interval"])):
            value = details["score" if key == "score" else "heldout_score"]
            details[f"{key}_label"] = score_label(value, fields.get("resolved"), fields["n"])
        for stage in details["stages"].values():
            stage["label"] = rate_label(stage["resolved"], stage["finished"])
        if details["twin_of"] and details["twin_of_score"] is not None:  # a twin's record is its original's
            counts = self.store.score_counts(agent_ids=[details["twin_of"]]).get(details["twin_of"], {})
            details["twin_of_label"] = score_label(details["twin_of_score"], *counts.get("score", (0, 0)))
        lineage = [a.id for a in self.store.ancestors(details["id"])][::-1]
        details["lineage"] = lineage
        if not details["own_code"]:
            details["diff_vs_parent"] = None  # it has none: `attempted_patch` is what it tried
            details["attempted_patch"] = _cap(details["attempted_patch"] or "", f"`dgm show {agent_id} --json`")
        elif details["parent_id"]:
            parent = self.store.get_agent(details["parent_id"])
            details["diff_vs_parent"] = _cap(self.store.code.diff(parent.commit_sha, details["commit"]))
        else:
            details["diff_vs_parent"] = None
            details["files"] = self.store.code.tree_files(details["commit"])
        return details

    def diff(self, a: str, b: str) -> dict[str, Any]:
        from dgm.lineage.details import require_own_code

        agent_a, agent_b = self.store.get_agent(a), self.store.get_agent(b)
        require_own_code(agent_a)  # else its commit is its parent's, and the diff would be of someone else's code
        require_own_code(agent_b)
        return {"a": agent_a.id, "b": agent_b.id,
                "diff": _cap(self.store.code.diff(agent_a.commit_sha, agent_b.commit_sha))}

    def heatmap(self, agent_ids: list[str]) -> dict[str, Any]:
        if not agent_ids:
            raise UsageError("heatmap needs ?agents=<id>,<id>,...")
        if len(agent_ids) > MAX_HEATMAP_AGENTS:
            raise UsageError(f"at most {MAX_HEATMAP_AGENTS} agents per heat map")
        resolved = [self.store.get_agent(a).id for a in agent_ids]
        matrix = self.store.task_status_matrix(resolved)
        tasks = sorted({t for per in matrix.values() for t in per})
        return {"agents": resolved, "tasks": tasks, "status": {a: matrix.get(a, {}) for a in resolved}}

    def run(self, run_id: str) -> dict[str, Any]:
        from dgm.lineage.details import run_details

        details = run_details(self.store, self.store.get_task_run(run_id))
        run = details.run
        out = dict(details.summary)
        out["patch"] = _cap(run.patch or "", f"`dgm show-run {run.id} --patch`")
        trajectory = details.trajectory
        if run.trajectory_artifact:
            if trajectory is None:  # missing or damaged in the archive, or not a JSON object
                why = details.unreadable.get("trajectory")
                trajectory = {"unreadable": True, **({"why": why} if why else {})}
            else:
                steps = trajectory.get("steps")
                # The agent wrote it: the page expects a list of objects of text, whatever types it used.
                trajectory = {**trajectory, "steps": [
                    {**{k: v if v is None or isinstance(v, (str, int, float)) else json.dumps(v)
                        for k, v in s.items()}, **_reply_and_notes(s)}
                    for s in steps if isinstance(s, dict)] if isinstance(steps, list) else []}
        out["trajectory"] = trajectory
        for key, part, text in (("agent_log_tail", "agent_log", details.agent_log),
                                ("eval_log_tail", "eval_log", details.eval_log)):
            if part in details.unreadable:
                out[key] = f"[cannot be read: {details.unreadable[part]}]"
            else:
                out[key] = text[-LOG_TAIL_CHARS:] if text is not None else None
        out["llm_calls"] = details.llm_calls
        return out

    def llm_call(self, call_id: str) -> dict[str, Any]:
        from dgm.lineage.details import call_summary

        call = self.store.get_llm_call(call_id)
        out = call_summary(call)
        out["transcript"] = self.store.artifacts.get_json(call.artifact_id) if call.artifact_id else None
        return out


MAX_LISTED_CALLS = 200
# How much of the end of a run's logs the page shows (`dgm show-run` prints all).
LOG_TAIL_CHARS = 6000


def _reply_and_notes(step: dict) -> dict[str, Any]:
    """What the model said at a step and why it ran nothing, for the page (only when there is any)."""
    from dgm.lineage.details import step_notes, step_reply

    reply, notes = step_reply(step), step_notes(step)
    return {**({"reply": reply} if reply is not None else {}), **({"notes": notes} if notes else {})}


def _cap(text: str, whole: str = "`dgm diff`") -> str:
    """`text` cut for the page, saying where the whole of it is (`whole`)."""
    if len(text) <= MAX_DIFF_CHARS:
        return text
    return text[:MAX_DIFF_CHARS] + f"\n[... {len(text) - MAX_DIFF_CHARS} more characters; all of it: {whole}]\n"


CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' data:; "
                           "style-src 'self' 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
                           "frame-ancestors 'none'")


IDLE_CONNECTION_S = 60.0
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def host_allowed(header: str, allowed: frozenset[str] | None) -> bool:
    """Whether a request's Host header names this server (None: any, when serving on all interfaces)."""
    if allowed is None:
        return True
    host = header.strip().lower()
    if host.startswith("["):  # [::1]:8765
        host = host[1:host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    return host in allowed


def _make_handler(api: ExplorerApi, allowed_hosts: frozenset[str] | None = None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "dgm-explorer"
        timeout = IDLE_CONNECTION_S  # a connection that sends nothing for this long is closed

        def parse_request(self) -> bool:
            if not super().parse_request():
                return False
            if not host_allowed(self.headers.get("Host", ""), allowed_hosts):
                # DNS rebinding: a page on some domain resolved to 127.0.0.1 would
                # otherwise read the archive through the user's browser.
                self.close_connection = True
                self._json(421, {"error": "unexpected Host header: open the explorer by the address dgm serve printed"})
                return False
            return True

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            # Unknown methods, malformed requests: JSON with the same headers as every answer.
            self.close_connection = True
            self._json(code, {"error": message or HTTPStatus(code).phrase})

        def log_message(self, *args: Any) -> None:  # quiet: the terminal shows the URL, not every poll
            pass

        def _send(self, status: int, body: bytes, content_type: str, cache: str = "no-store") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", cache)
            self.send_header("X-Content-Type-Options", "nosniff")
            # Much of what the explorer shows was written by agents (trajectories,
            # patches, proposals): untrusted. Everything is escaped, and should an
            # escape be missed, no script but app.js runs and nothing leaves the server.
            self.send_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, obj: Any) -> None:
            body = obj if isinstance(obj, bytes) else json.dumps(obj, default=str).encode()
            self._send(status, body, "application/json")

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            path = unquote(parts.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            try:
                if path.startswith("/api/"):
                    self._json(200, self._api(path[len("/api/"):].strip("/").split("/"), query))
                else:
                    self._static(path)
            except NotFound as exc:
                self._json(404, {"error": str(exc)})
            except UsageError as exc:
                self._json(400, {"error": str(exc)})
            except DgmError as exc:
                self._json(503, {"error": str(exc)})

        def do_POST(self) -> None:
            # The body is not read: the connection must end here, or the body
            # would be taken for the next request on it.
            self.close_connection = True
            self._json(405, {"error": "the explorer is read-only"})

        do_PUT = do_DELETE = do_PATCH = do_POST

        def _api(self, seg: list[str], q: dict[str, str]) -> Any:
            if seg == ["campaigns"]:
                return api.campaigns()
            if len(seg) == 3 and seg[0] == "campaigns":
                if seg[2] == "graph":
                    return api.graph_bytes(seg[1])
                if seg[2] == "version":
                    return api.version(seg[1])
                if seg[2] == "series":
                    return api.series(seg[1])
            if len(seg) == 2 and seg[0] == "agents":
                return api.agent(seg[1])
            if seg == ["diff"]:
                if not q.get("a") or not q.get("b"):
                    raise UsageError("diff needs ?a=<agent>&b=<agent>")
                return api.diff(q["a"], q["b"])
            if seg == ["heatmap"]:
                return api.heatmap([a for a in q.get("agents", "").split(",") if a])
            if len(seg) == 2 and seg[0] == "runs":
                return api.run(seg[1])
            if len(seg) == 2 and seg[0] == "llm_calls":
                return api.llm_call(seg[1])
            raise NotFound(f"no API route /api/{'/'.join(seg)}")

        def _static(self, path: str) -> None:
            name = "index.html" if path in ("", "/") else path.lstrip("/")
            try:
                target = (STATIC_DIR / name).resolve()
                found = STATIC_DIR.resolve() in target.parents and target.is_file()
            except (ValueError, OSError):  # a NUL byte, a name too long
                found = False
            if not found:
                self._send(404, b"not found", "text/plain")
                return
            ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            if ctype.startswith("text/") or ctype in ("application/javascript",):
                ctype += "; charset=utf-8"
            self._send(200, target.read_bytes(), ctype, cache="no-cache")

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:
        # A client that hangs up early (a reload, a closed tab), while its request is
        # read or answered, is routine, not a traceback on the user's terminal.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Server6(_Server):
    address_family = socket.AF_INET6


class ExplorerServer:
    def __init__(self, store: ArchiveStore, host: str = "127.0.0.1", port: int = 8765):
        self.api = ExplorerApi(store)
        # On all interfaces the user chose to be reached by any name; otherwise
        # only by the address served on and the loopback names.
        allowed = None if host in ("", "0.0.0.0", "::") else frozenset({host.lower().strip("[]"), *LOOPBACK_NAMES})
        server_class = _Server6 if ":" in host else _Server
        try:
            self.httpd = server_class((host.strip("[]"), port), _make_handler(self.api, allowed))
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self.host, self.port = self.httpd.server_address[:2]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in str(self.host) else self.host
        return f"http://{host}:{self.port}/"

    def serve_forever(self) -> None:
        try:
            self.httpd.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass

    def start(self) -> "ExplorerServer":
        """Serve on a background thread (tests, benchmarks)."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
        self.httpd.server_close()

    def __enter__(self) -> "ExplorerServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_until_up(url: str, timeout_s: float = 10.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url + "api/campaigns", timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
