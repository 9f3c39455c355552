"""The agent's own tests. The sanity gate runs them inside a sandbox before a
self-modified child gets any benchmark time, so a descendant that breaks its
own loop is rejected cheaply."""

import json
import os
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import main  # noqa: E402


def test_parse_action_takes_the_single_bash_block():
    command, count = main.parse_action("THOUGHT: look\n\n```bash\nls -la\n```\n")
    assert (command, count) == ("ls -la", 1)


def test_parse_action_rejects_zero_or_many_blocks():
    assert main.parse_action("no block here") == (None, 0)
    assert main.parse_action("```bash\nls\n```\n```bash\npwd\n```")[1] == 2


def test_truncate_keeps_head_and_tail():
    text = "a" * main.OUTPUT_HEAD_CHARS + "b" * 50_000 + "c" * main.OUTPUT_TAIL_CHARS
    out = main.truncate(text)
    assert out.startswith("a" * 100) and out.endswith("c" * 100) and "elided" in out
    assert main.truncate("short") == "short"


def test_run_command_reports_output_and_timeouts(tmp_path):
    code, out = main.run_command("echo hi && exit 3", str(tmp_path), 10)
    assert code == 3 and out.strip() == "hi"
    code, out = main.run_command("sleep 5", str(tmp_path), 0.5)
    assert code is None and "timed out" in out


def test_full_loop_against_a_fake_gateway(tmp_path, monkeypatch):
    """One edit, then submit: the loop talks HTTP over a Unix socket."""
    replies = iter([
        "THOUGHT: edit\n```bash\necho fixed > file.txt\n```",
        "THOUGHT: done\n```bash\necho DGM_SUBMIT_FINAL_OUTPUT\n```",
    ])
    sock_path = str(tmp_path / "llm.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sock_path)
    server.listen(5)

    def serve():
        for _ in range(2):
            conn, _ = server.accept()
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, body = data.split(b"\r\n\r\n", 1)
            length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
            while len(body) < length:
                body += conn.recv(65536)
            reply = json.dumps({"choices": [{"message": {"role": "assistant", "content": next(replies)}}]}).encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                         + str(len(reply)).encode() + b"\r\n\r\n" + reply)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    repo = tmp_path / "repo"
    repo.mkdir()
    (tmp_path / "problem.md").write_text("make file.txt say fixed")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    monkeypatch.setenv("DGM_LLM_SOCKET", sock_path)
    monkeypatch.setenv("DGM_LLM_TOKEN", "t")
    monkeypatch.setenv("DGM_REPO", str(repo))
    monkeypatch.setenv("DGM_PROBLEM_FILE", str(tmp_path / "problem.md"))
    monkeypatch.setenv("DGM_OUTPUT_DIR", str(out_dir))
    monkeypatch.setenv("DGM_TIME_LIMIT_S", "60")
    assert main.main() == 0
    assert (repo / "file.txt").read_text().strip() == "fixed"
    trajectory = json.loads((out_dir / "trajectory.json").read_text())
    assert trajectory["exit_status"] == "submitted"
    server.close()


def _history(turns: int, chars: int) -> list:
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": "the task"}]
    for i in range(turns):
        messages.append({"role": "assistant", "content": f"reply {i} " + "r" * chars})
        messages.append({"role": "user", "content": f"output {i} " + "o" * chars})
    return messages


def _tokens(messages) -> int:
    return sum(main.message_tokens(m) for m in messages)


def test_fit_history_keeps_the_task_and_the_latest_turns_within_the_budget():
    messages = _history(turns=40, chars=600)
    budget = main.history_budget(2048, 4096)
    assert _tokens(messages) > 4 * budget
    sent = main.fit_history(messages, budget)
    assert _tokens(sent) <= budget
    assert sent[0] == messages[0] and sent[1]["content"].startswith("the task")
    assert sent[-1] == messages[-1] and sent[2]["role"] == "assistant"
    dropped = len(messages) - len(sent)
    assert f"[{dropped} earlier messages were dropped" in sent[1]["content"]
    assert len(messages) == 82 and messages[1]["content"] == "the task"  # the full history is kept as it was
    # A history that fits goes out whole.
    short = _history(turns=2, chars=50)
    assert main.fit_history(short, budget) == short


def test_fit_history_clips_a_single_message_too_long_for_the_window():
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": "T" * 50_000},
                {"role": "assistant", "content": "look"}, {"role": "user", "content": "start" + "x" * 30_000 + "end"}]
    sent = main.fit_history(messages, 1500)
    assert _tokens(sent) <= 1500
    assert sent[-1]["content"].startswith("start") and sent[-1]["content"].endswith("end")
    assert "elided" in sent[1]["content"]


def test_the_reply_room_and_history_fill_a_small_window():
    assert main.reply_tokens(2048, 4096) == 512
    assert main.history_budget(2048, 4096) + main.reply_tokens(2048, 4096) == 2048
    assert main.reply_tokens(200_000, 4096) == 4096


def _serve(sock_path, answers, seen):
    """A gateway stand-in: each answer is (status, body); the requests are kept in `seen`."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sock_path)
    server.listen(5)

    def serve():
        for status, body in answers:
            conn, _ = server.accept()
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, rest = data.split(b"\r\n\r\n", 1)
            length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
            while len(rest) < length:
                rest += conn.recv(65536)
            seen.append(json.loads(rest))
            reply = json.dumps(body).encode()
            conn.sendall(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(reply)}"
                         .encode() + b"\r\n\r\n" + reply)
            conn.close()
        server.close()

    threading.Thread(target=serve, daemon=True).start()


def _run_agent(tmp_path, monkeypatch, answers, problem="make file.txt say fixed"):
    seen = []
    sock_path = str(tmp_path / "llm.sock")
    _serve(sock_path, answers, seen)
    repo = tmp_path / "repo"
    repo.mkdir()
    (tmp_path / "problem.md").write_text(problem)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    for name, value in (("DGM_LLM_SOCKET", sock_path), ("DGM_LLM_TOKEN", "t"), ("DGM_REPO", str(repo)),
                        ("DGM_PROBLEM_FILE", str(tmp_path / "problem.md")), ("DGM_OUTPUT_DIR", str(out_dir)),
                        ("DGM_TIME_LIMIT_S", "60")):
        monkeypatch.setenv(name, value)
    assert main.main() == 0
    return seen, json.loads((out_dir / "trajectory.json").read_text())


def _reply(text, finish="stop"):
    return 200, {"choices": [{"finish_reason": finish, "message": {"role": "assistant", "content": text}}]}


def test_a_context_length_error_makes_the_agent_send_less_and_carry_on(tmp_path, monkeypatch):
    monkeypatch.setattr(main, "CONTEXT_WINDOW_TOKENS", 8192)
    overflow = (400, {"error": {"message": "context length exceeded: exceed context window", "type":
                                "context_length_exceeded"}})
    seen, trajectory = _run_agent(tmp_path, monkeypatch, [
        _reply("THOUGHT: look\n```bash\nseq 1 3000\n```"),
        overflow,
        _reply("THOUGHT: done\n```bash\necho DGM_SUBMIT_FINAL_OUTPUT\n```"),
    ])
    assert trajectory["exit_status"] == "submitted"
    assert len(trajectory["context_overflows"]) == 1
    assert len(json.dumps(seen[2]["messages"])) < len(json.dumps(seen[1]["messages"]))
    assert all(request["max_tokens"] == main.reply_tokens(main.CONTEXT_WINDOW_TOKENS, main.MAX_OUTPUT_TOKENS)
               for request in seen)


def test_the_window_the_harness_gives_bounds_every_request(tmp_path, monkeypatch):
    monkeypatch.setattr(main, "CONTEXT_WINDOW_TOKENS", 2048)
    answers = [_reply(f"THOUGHT: step {i}\n```bash\nseq 1 2000\n```") for i in range(6)]
    answers.append(_reply("THOUGHT: done\n```bash\necho DGM_SUBMIT_FINAL_OUTPUT\n```"))
    seen, trajectory = _run_agent(tmp_path, monkeypatch, answers, problem="P" * 20_000)
    assert trajectory["exit_status"] == "submitted"
    for request in seen:
        assert _tokens(request["messages"]) + request["max_tokens"] <= 2048
    assert len(trajectory["messages"]) > len(seen[-1]["messages"])  # the trajectory keeps all of it


def test_a_reply_cut_at_the_output_limit_is_answered_with_a_shorter_ask(tmp_path, monkeypatch):
    seen, trajectory = _run_agent(tmp_path, monkeypatch, [
        _reply("THOUGHT: a very long thought that never ends and", finish="length"),
        _reply("THOUGHT: done\n```bash\necho DGM_SUBMIT_FINAL_OUTPUT\n```"),
    ])
    assert trajectory["steps"][0]["cut_at_output_limit"] is True
    assert seen[1]["messages"][-1]["content"] == main.CUT_REPLY
    assert trajectory["exit_status"] == "submitted"
