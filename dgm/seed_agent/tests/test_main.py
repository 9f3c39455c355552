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
