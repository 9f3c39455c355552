"""A deliberately hostile agent for the sandbox tests. The problem statement
names one attack; results go to report.txt in the repository (so they show in
the diff) and to stdout (the agent log)."""

import os
import socket
import subprocess
import sys
import time

problem = open(os.environ["DGM_PROBLEM_FILE"]).read()
attack = problem.split("ATTACK:", 1)[1].split()[0]
repo = os.environ["DGM_REPO"]
report = []


def note(line):
    report.append(line)
    print(line, flush=True)


def save():
    with open(os.path.join(repo, "report.txt"), "w") as fh:
        fh.write("\n".join(report) + "\n")


if attack == "network":
    note("interfaces: " + ",".join(sorted(os.listdir("/sys/class/net"))))
    port = int(problem.split("PORT:", 1)[1].split()[0])
    # The host listens on its own loopback; a sandbox must not reach it.
    try:
        socket.create_connection(("127.0.0.1", port), timeout=3).close()
        note("host-loopback: CONNECTED")
    except OSError as exc:
        note(f"host-loopback: blocked ({exc.__class__.__name__})")
    try:
        socket.getaddrinfo("example.invalid", 80)
        note("dns: RESOLVED")
    except OSError:
        note("dns: blocked")
    save()
elif attack == "secrets":
    found = [f"{k}={v}" for k, v in os.environ.items()]
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                found.append(open(f"/proc/{pid}/environ", "rb").read().decode(errors="replace").replace("\0", "\n"))
            except OSError:
                pass
    grep = subprocess.run(["grep", "-rIl", "--exclude-dir=proc", "--exclude-dir=sys", "sk-", "/"],
                          capture_output=True, text=True, timeout=60).stdout
    note("environment and files seen:\n" + "\n".join(found) + "\n" + grep)
    save()
elif attack == "write-outside":
    for path in ["/agent/pwned.txt", "/etc/pwned.txt", "/dgm/problem.md", "/run/dgm-gateway/pwned", "/usr/bin/pwned",
                 "/home/agent/../../root/pwned"]:
        try:
            with open(path, "w") as fh:
                fh.write("pwned")
            note(f"{path}: WRITTEN")
        except OSError as exc:
            note(f"{path}: refused ({exc.__class__.__name__})")
    save()
elif attack == "fork-bomb":
    save()
    children = 0
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            if os.fork() == 0:
                time.sleep(30)
                os._exit(0)
            children += 1
        except OSError:
            time.sleep(0.01)
    note(f"forked {children}")
elif attack == "memory":
    save()
    hog = []
    while True:
        hog.append(bytearray(64 * 1024 * 1024))  # zero-filled: the pages are really touched
elif attack == "sleep":
    note("sleeping past the limit, with a daemon editing the repo")
    save()
    if os.fork() == 0:
        os.setsid()
        while True:
            with open(os.path.join(repo, "daemon.txt"), "a") as fh:
                fh.write("tick\n")
            time.sleep(0.2)
    time.sleep(100_000)
elif attack == "flood":
    save()
    chunk = "x" * (1 << 20)
    for _ in range(100):
        sys.stdout.write(chunk)
    sys.stdout.flush()
else:
    note(f"unknown attack {attack}")
    save()
