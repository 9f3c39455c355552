"""A hostile agent, one attack per task, in real Docker sandboxes.

Each run must end with a recorded status, the others must carry on, the host
must be unharmed, the host's API key must appear nowhere in what the sandbox
produced, and no container may be left behind.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.support.harness import REPO_ROOT, evaluate, leftover_containers
from tests.support.tiny_bench import TinyBenchmark

pytestmark = pytest.mark.docker

ATTACKS = ["network", "secrets", "write-outside", "fork-bomb", "memory", "sleep", "flood"]


def test_hostile_agent_is_contained(tmp_path, store, docker_client, monkeypatch):
    from dgm.bench.evaluate import EvalSettings
    from dgm.sandbox.docker import SandboxLimits

    secret = "sk-dgmtest-" + uuid.uuid4().hex
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("ANTHROPIC_API_KEY", secret)

    # A listener on the host's loopback: a sandbox must not be able to reach it.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    connections = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                connections.append(listener.accept())
            except OSError:
                pass

    threading.Thread(target=accept, daemon=True).start()

    bench = TinyBenchmark(tmp_path / "bench", problems=[f"ATTACK: {a} PORT: {port}" for a in ATTACKS])
    settings = EvalSettings(model="scripted:noop", time_limit_s=12, test_timeout_s=60,
                            limits=SandboxLimits(memory_mb=512, pids=128, output_cap_bytes=1_000_000,
                                                 host_grace_s=10))
    agent_dir = REPO_ROOT / "tests" / "fixtures" / "agents" / "hostile"
    runs = evaluate(store, docker_client, bench, agent_dir, "scripted:noop", workers=2, settings=settings)
    stop.set()
    by_attack = {a: r for a, r in zip(ATTACKS, runs)}

    # Every run ended with a recorded status.
    for attack, run in by_attack.items():
        assert run.status in {"resolved", "unresolved", "empty_patch", "error", "timeout"}, (attack, run.status)
        assert run.finished_at is not None

    # Network: only loopback inside, the host's loopback unreachable.
    network = by_attack["network"].patch
    assert "interfaces: lo\n" in network.replace("+", "")
    assert "host-loopback: blocked" in network and "dns: blocked" in network
    assert connections == []

    # Writes outside the repository were all refused; the host is untouched.
    writes = by_attack["write-outside"].patch
    assert "WRITTEN" not in writes and writes.count("refused") == 6
    assert not Path("/etc/pwned.txt").exists()
    from dgm.agent_code import AgentCodeCache

    cached_agent = Path(AgentCodeCache(store).path(store.list_agents()[0].commit_sha))
    assert not (cached_agent / "pwned.txt").exists()

    # Resource attacks end with a status, not a hang or a host problem.
    assert by_attack["sleep"].status == "timeout"
    assert by_attack["fork-bomb"].status in {"timeout", "unresolved", "error"}
    assert by_attack["memory"].status in {"unresolved", "error", "timeout"}
    assert "512 MB memory limit" in (by_attack["memory"].error or ""), by_attack["memory"].error
    # After an overrun the diff is still taken (the inner deadline fired, not the host's).
    assert "sleeping past the limit" in by_attack["sleep"].patch

    # 100 MB of output was drained and capped, not stored.
    flood_log = store.artifacts.get(by_attack["flood"].agent_log_artifact)
    assert len(flood_log) < 1_100_000 and b"truncated" in flood_log

    # The secret appears nowhere the sandbox's output went: patches, rows, artifacts.
    assert "environment and files seen" in by_attack["secrets"].patch
    for run in runs:
        for field in ("patch", "error"):
            assert secret not in (getattr(run, field) or "")
    for path in (store.root / "artifacts").rglob("*"):
        if path.is_file():
            artifact_id = path.parent.name + path.name
            if store.artifacts.exists(artifact_id):
                assert secret.encode() not in store.artifacts.get(artifact_id), path
    assert secret.encode() not in (store.root / "dgm.db").read_bytes()

    assert leftover_containers(docker_client) == []


FLOOD_SCRIPT = """
import socket, time
conns = []
for _ in range(2000):
    s = socket.socket(socket.AF_UNIX)
    s.connect('{sock}')
    conns.append(s)
print('opened', len(conns), flush=True)
time.sleep({hold})
refused = closed = 0
for s in conns:
    s.settimeout(1)
    try:
        data = s.recv(300)
    except socket.timeout:
        data = None
    if data and b' 429 ' in data.split(b'\\\\r\\\\n')[0]:
        refused += 1
    elif data == b'':
        closed += 1
print('refused', refused, 'closed', closed, flush=True)
"""

CALL_SCRIPT = """
import http.client, json, socket
class C(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect('{sock}')
conn = C('localhost', timeout=30)
conn.request('POST', '/v1/chat/completions', body=json.dumps({{'messages': [{{'role': 'user', 'content': 'hi'}}]}}),
             headers={{'Authorization': 'Bearer {token}', 'Content-Type': 'application/json'}})
print('status', conn.getresponse().status, flush=True)
"""


def test_a_sandbox_flooding_the_gateway_costs_the_host_a_few_threads_and_starves_no_one(
        store, docker_client, base_image):
    from dgm.llm.client import CallContext, LLMClient
    from dgm.llm.gateway import CONTAINER_SOCKET, CONTAINER_SOCKET_DIR, Gateway
    from dgm.sandbox.docker import Mount, Sandbox

    from dgm.agent_code import SEED_AGENT_DIR, commit_agent_dir

    campaign = store.create_campaign(name="flood", kind="eval", config={})
    agent = store.add_agent(campaign.id, commit_agent_dir(store, SEED_AGENT_DIR, "seed"), status="seed",
                            origin="seed")
    per_sandbox = 8
    with Gateway(LLMClient(store), max_connections_per_sandbox=per_sandbox, request_timeout_s=3) as gateway:
        mounts = [Mount(gateway.socket_dir, CONTAINER_SOCKET_DIR)]
        baseline = threading.active_count()
        flooder = Sandbox(docker_client, base_image, mounts=mounts, name_hint="flood")
        outcome = {}
        worker = threading.Thread(target=lambda: outcome.setdefault("flood", flooder.run(
            ["python3", "-c", FLOOD_SCRIPT.format(sock=CONTAINER_SOCKET, hold=8)], workdir="/tmp", timeout_s=60)))
        worker.start()
        deadline = time.monotonic() + 60
        while gateway.connections()["refused"] < 2000 - per_sandbox and time.monotonic() < deadline:
            time.sleep(0.05)
        during = gateway.connections()
        threads = threading.active_count()
        # Meanwhile another sandbox's call goes through.
        token = gateway.grant(CallContext(purpose="task", model="scripted:noop", campaign_id=campaign.id,
                                          agent_id=agent.id))
        with Sandbox(docker_client, base_image, mounts=mounts, name_hint="caller") as caller:
            call = caller.run(["python3", "-c", CALL_SCRIPT.format(sock=CONTAINER_SOCKET, token=token)],
                              workdir="/tmp", timeout_s=60)
        worker.join(90)
        flooder.remove()
    assert during["refused"] == 2000 - per_sandbox and sorted(during["open"].values()) == [per_sandbox]
    assert threads <= baseline + per_sandbox + 2, (threads, baseline)
    assert "status 200" in call.output, call.output
    # The surplus was told why (429); the connections it held were closed once idle.
    flood = outcome["flood"].output
    assert f"refused {2000 - per_sandbox} closed {per_sandbox}" in flood, flood
    assert leftover_containers(docker_client) == []
