"""dgm seed agent (generation 0): a bash-action loop in one message history.

The model sees the problem, replies with a THOUGHT and exactly one ```bash
block; the agent runs it in the repository and answers with its output. It
stops when a command prints the submit sentinel as its first line, or at the
step or time limit. The harness, not the agent, takes the final `git diff`.

Standard library only: it must run on any interpreter a sandbox offers. Every
knob is a constant below, so a self-modifying descendant can find and change it.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time

MAX_STEPS = 30
COMMAND_TIMEOUT_S = 120
OUTPUT_HEAD_CHARS = 6000
OUTPUT_TAIL_CHARS = 4000
TIME_MARGIN_S = 15
LLM_RETRIES = 3
SUBMIT_SENTINEL = "DGM_SUBMIT_FINAL_OUTPUT"
# The model's context window in tokens (the harness sets DGM_CONTEXT_WINDOW
# from the task model's `context_window`), and the most output asked for per
# reply (DGM_MAX_OUTPUT_TOKENS). The history sent is trimmed to fit.
CONTEXT_WINDOW_TOKENS = int(os.environ.get("DGM_CONTEXT_WINDOW") or 32768)
MAX_OUTPUT_TOKENS = int(os.environ.get("DGM_MAX_OUTPUT_TOKENS") or 4096)
# A rough count that errs high (English and code run ~4 characters a token),
# so a trimmed history fits without the model's own tokenizer.
CHARS_PER_TOKEN = 3
MESSAGE_OVERHEAD_TOKENS = 8
# On a context-length error the history budget is cut by this factor and the
# call is made again, this many times at most.
OVERFLOW_SHRINK = 0.5
OVERFLOW_RETRIES = 3

SYSTEM_PROMPT = """You are a careful software engineer working in a git repository.
Each reply must contain a short THOUGHT and then exactly one bash code block:

```bash
<one command, or a few joined with && >
```

The command runs in the repository root in a fresh shell (no state is kept
between commands except files). Inspect the code, reproduce the problem, edit
files (e.g. with python3, sed or cat <<'EOF'), and run the tests.
When you are done, run exactly:

```bash
echo DGM_SUBMIT_FINAL_OUTPUT
```
Do not modify tests you were not asked to; your changes are taken from `git diff`."""

INSTANCE_TEMPLATE = """Solve this issue in the repository at {repo}:

<issue>
{problem}
</issue>

Start by looking at the relevant code."""

FORMAT_ERROR = """Your reply must contain exactly one ```bash block (found {count}).
Reply with a THOUGHT and one bash block; to finish, run `echo DGM_SUBMIT_FINAL_OUTPUT`."""

CUT_REPLY = """Your reply was cut off at the output limit before it was complete.
Keep the THOUGHT to a sentence or two and reply with one short bash block."""

DROPPED_NOTE = "\n\n[{count} earlier messages were dropped to fit the model's context window]"


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over the gateway's Unix socket: the sandbox has no other network."""

    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


class LLMError(Exception):
    def __init__(self, message: str, fatal: bool = False, context_overflow: bool = False):
        super().__init__(message)
        self.fatal = fatal
        self.context_overflow = context_overflow


def approx_tokens(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN + 1


def message_tokens(message: dict) -> int:
    return approx_tokens(message.get("content") or "") + MESSAGE_OVERHEAD_TOKENS


def clip_middle(text: str, max_chars: int) -> str:
    """`text` cut to about `max_chars`, keeping its start and end."""
    if len(text) <= max_chars:
        return text
    keep = max(0, max_chars - 60)
    head, tail = keep * 2 // 3, keep - keep * 2 // 3
    return text[:head] + f"\n[... {len(text) - keep} characters elided ...]\n" + (text[-tail:] if tail else "")


def history_budget(context_window: int, max_output: int) -> int:
    """Tokens the history may take: the window less the reply's room."""
    return max(256, context_window - reply_tokens(context_window, max_output))


def reply_tokens(context_window: int, max_output: int) -> int:
    """The max_tokens asked for: at most a quarter of a small window."""
    return max(64, min(max_output, context_window // 4))


def fit_history(messages: list[dict], budget: int) -> list[dict]:
    """What is sent of `messages`: the system prompt and the task, then the
    most recent turns that fit in `budget` tokens (older ones are dropped, and
    the task says how many); when even that does not fit, the longest
    messages are clipped in the middle. `messages` itself is not changed."""
    head, turns = messages[:2], messages[2:]
    used = sum(message_tokens(m) for m in head)
    kept: list[dict] = []
    for message in reversed(turns):
        cost = message_tokens(message)
        if used + cost > budget and kept:
            break
        kept.insert(0, message)
        used += cost
    # Start the kept turns with the model's own reply, so roles still alternate.
    while kept and kept[0].get("role") != "assistant" and len(kept) > 1:
        kept.pop(0)
    dropped = len(turns) - len(kept)
    head = [dict(m) for m in head]
    if dropped and len(head) > 1:
        head[1]["content"] = (head[1].get("content") or "") + DROPPED_NOTE.format(count=dropped)
    sent = head + [dict(m) for m in kept]
    # Still too long (a huge task or output): clip the longest message until it fits.
    for _ in range(len(sent) * 4):
        total = sum(message_tokens(m) for m in sent)
        if total <= budget:
            break
        longest = max(sent, key=lambda m: len(m.get("content") or ""))
        text = longest.get("content") or ""
        over_chars = (total - budget) * CHARS_PER_TOKEN
        longest["content"] = clip_middle(text, max(200, len(text) - over_chars - 200))
        if len(longest["content"]) >= len(text):
            break  # nothing left to clip
    return sent


def query_model(messages: list[dict], timeout: float, max_tokens: int | None = None) -> dict:
    """POST the history to the gateway; returns the OpenAI-format response."""
    request = {"model": os.environ.get("DGM_MODEL", ""), "messages": messages}
    if max_tokens:
        request["max_tokens"] = max_tokens
    body = json.dumps(request)
    last_error = ""
    for attempt in range(LLM_RETRIES + 1):
        conn = UnixHTTPConnection(os.environ["DGM_LLM_SOCKET"], timeout=timeout)
        try:
            conn.request("POST", "/v1/chat/completions", body=body, headers={
                "Authorization": f"Bearer {os.environ.get('DGM_LLM_TOKEN', '')}",
                "Content-Type": "application/json",
            })
            response = conn.getresponse()
            payload = response.read()
            if response.status == 200:
                return json.loads(payload)
            last_error = f"HTTP {response.status}: {payload[:500]!r}"
            if response.status == 400 and b"context_length_exceeded" in payload:
                raise LLMError(last_error, context_overflow=True)
            # 401 (token revoked) and 402 (budget) will not get better by retrying.
            if response.status in (400, 401, 402, 403):
                raise LLMError(last_error, fatal=True)
        except (OSError, http.client.HTTPException, json.JSONDecodeError) as exc:
            last_error = f"{type(exc).__name__}: {exc}"
        finally:
            conn.close()
        time.sleep(min(10, 2 ** attempt))
    raise LLMError(last_error, fatal=True)


def parse_action(text: str) -> tuple[str | None, int]:
    """The single bash block of a reply, and how many blocks there were."""
    blocks = re.findall(r"```bash\s*\n(.*?)\n?```", text, re.DOTALL)
    if len(blocks) != 1:
        return None, len(blocks)
    return blocks[0].strip(), 1


def truncate(output: str) -> str:
    limit = OUTPUT_HEAD_CHARS + OUTPUT_TAIL_CHARS
    if len(output) <= limit:
        return output
    dropped = len(output) - limit
    return (output[:OUTPUT_HEAD_CHARS] + f"\n[... {dropped} characters elided ...]\n"
            + output[-OUTPUT_TAIL_CHARS:])


def run_command(command: str, cwd: str, timeout: float) -> tuple[int | None, str]:
    try:
        proc = subprocess.run(["bash", "-c", command], cwd=cwd, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout, text=True, errors="replace")
        return proc.returncode, proc.stdout
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or ""
        if isinstance(out, bytes):
            out = out.decode("utf-8", "replace")
        return None, out + f"\n[command timed out after {timeout:.0f} s]"


def observation(returncode: int | None, output: str) -> str:
    return f"<returncode>{returncode}</returncode>\n<output>\n{truncate(output)}\n</output>"


class Trajectory:
    def __init__(self, output_dir: str):
        self.path = os.path.join(output_dir, "trajectory.json") if output_dir else ""
        self.data = {"agent": "dgm-seed", "steps": [], "exit_status": None, "messages": []}

    def save(self, messages: list[dict]) -> None:
        if not self.path:
            return
        self.data["messages"] = messages
        tmp = self.path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(self.data, fh, indent=1)
        os.replace(tmp, self.path)


def main() -> int:
    missing = [name for name in ("DGM_PROBLEM_FILE", "DGM_LLM_SOCKET") if not os.environ.get(name)]
    if missing:  # run by hand: say how it is meant to run
        print(f"{sys.argv[0]}: {' and '.join(missing)} not set: this agent runs under dgm's agent contract "
              "(`dgm eval --agent-dir DIR`; see the README)", file=sys.stderr)
        return 2
    started = time.monotonic()
    repo = os.environ.get("DGM_REPO", os.getcwd())
    with open(os.environ["DGM_PROBLEM_FILE"]) as fh:
        problem = fh.read()
    time_limit = float(os.environ.get("DGM_TIME_LIMIT_S", "600"))
    trajectory = Trajectory(os.environ.get("DGM_OUTPUT_DIR", ""))
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": INSTANCE_TEMPLATE.format(repo=repo, problem=problem)},
    ]
    exit_status = "step_limit"
    budget = history_budget(CONTEXT_WINDOW_TOKENS, MAX_OUTPUT_TOKENS)
    max_tokens = reply_tokens(CONTEXT_WINDOW_TOKENS, MAX_OUTPUT_TOKENS)
    for step in range(MAX_STEPS):
        response, overflows = None, 0
        while response is None:
            remaining = time_limit - (time.monotonic() - started) - TIME_MARGIN_S
            if remaining <= 0:
                break
            try:
                response = query_model(fit_history(messages, budget), timeout=max(5.0, remaining),
                                       max_tokens=max_tokens)
            except LLMError as exc:
                if exc.context_overflow and overflows < OVERFLOW_RETRIES:
                    # Our count of tokens erred low for this model: send less.
                    overflows += 1
                    budget = max(256, int(budget * OVERFLOW_SHRINK))
                    trajectory.data.setdefault("context_overflows", []).append({"step": step, "error": str(exc)})
                    continue
                trajectory.data["error"] = str(exc)
                exit_status = "context_overflow" if exc.context_overflow else "llm_error"
                break
        if response is None:
            if exit_status == "step_limit":
                exit_status = "time_limit"
            break
        choice = response["choices"][0]
        text = choice["message"].get("content") or ""
        messages.append({"role": "assistant", "content": text})
        command, count = parse_action(text)
        record = {"step": step, "response": text, "usage": response.get("usage")}
        cut = choice.get("finish_reason") == "length"
        if cut:
            record["cut_at_output_limit"] = True
        if command is None:
            messages.append({"role": "user", "content": CUT_REPLY if cut else FORMAT_ERROR.format(count=count)})
            record["format_error"] = count
        else:
            timeout = max(1.0, min(COMMAND_TIMEOUT_S, time_limit - (time.monotonic() - started) - 5))
            returncode, output = run_command(command, repo, timeout)
            record.update(command=command, returncode=returncode, output=truncate(output))
            if output.lstrip().splitlines()[:1] == [SUBMIT_SENTINEL]:
                trajectory.data["steps"].append(record)
                exit_status = "submitted"
                break
            messages.append({"role": "user", "content": observation(returncode, output)})
        trajectory.data["steps"].append(record)
        trajectory.save(messages)
    trajectory.data["exit_status"] = exit_status
    trajectory.data["elapsed_s"] = round(time.monotonic() - started, 3)
    trajectory.save(messages)
    print(f"dgm-seed: {exit_status} after {len(trajectory.data['steps'])} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
