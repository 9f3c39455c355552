"""Per-test results from each Polyglot runner's log: test name -> PASSED /
FAILED / SKIPPED. They say which tests failed; they never decide resolved
(the test command's exit status does, as in DGM's harness), so a runner
whose report is missing or cut short costs only the detail.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

PASSED, FAILED, SKIPPED = "PASSED", "FAILED", "SKIPPED"


def parse_pytest(log: str) -> dict[str, str]:
    from swebench.harness.log_parsers.python import parse_log_pytest

    return parse_log_pytest(log, None)


def parse_go_json(log: str) -> dict[str, str]:
    status: dict[str, str] = {}
    actions = {"pass": PASSED, "fail": FAILED, "skip": SKIPPED}
    for line in log.splitlines():
        if not line.startswith("{"):
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("Test") and event.get("Action") in actions:
            status[str(event["Test"])] = actions[event["Action"]]
    return status


_CARGO_LINE = re.compile(r"^test (\S+) \.\.\. (ok|FAILED|ignored)\s*$", re.MULTILINE)
_CARGO_FAILURES = re.compile(r"^failures:\n((?:    \S+\n)+)", re.MULTILINE)


def parse_cargo(log: str) -> dict[str, str]:
    status = {name: {"ok": PASSED, "FAILED": FAILED, "ignored": SKIPPED}[word]
              for name, word in _CARGO_LINE.findall(log)}
    # `--quiet` prints dots, and names only the failures, in its summary.
    for block in _CARGO_FAILURES.findall(log):
        for name in block.split():
            status[name] = FAILED
    return status


def parse_jest(log: str) -> dict[str, str]:
    status: dict[str, str] = {}
    for line in log.splitlines():
        if not line.startswith('{"num'):
            continue
        try:
            report = json.loads(line)
        except ValueError:
            continue
        for suite in report.get("testResults", []) or []:
            for test in suite.get("assertionResults", []) or []:
                name = test.get("fullName") or test.get("title") or "?"
                status[name] = {"passed": PASSED, "failed": FAILED}.get(test.get("status"), SKIPPED)
    return status


def _junit_xml(log: str) -> dict[str, str]:
    status: dict[str, str] = {}
    # Catch2 wraps its suites in <testsuites>; JUnit's legacy report is one <testsuite>.
    pattern = r"<testsuites\b.*?</testsuites>" if "<testsuites" in log else r"<testsuite\b.*?</testsuite>"
    for match in re.finditer(pattern, log, re.DOTALL):
        try:
            root = ET.fromstring(match.group(0))
        except ET.ParseError:
            continue
        for case in root.iter("testcase"):
            name = case.get("name", "?")
            if case.get("classname"):
                name = f"{case.get('classname')}.{name}"
            if case.find("failure") is not None or case.find("error") is not None:
                status[name] = FAILED
            elif case.find("skipped") is not None:
                status[name] = SKIPPED
            else:
                status[name] = PASSED
    return status


PARSERS = {
    "pytest": parse_pytest,
    "go-json": parse_go_json,
    "cargo": parse_cargo,
    "jest": parse_jest,
    "junit-xml": _junit_xml,
    "catch2-junit": _junit_xml,
}


def parse(parser: str, log: str) -> dict[str, str]:
    return PARSERS[parser](log)
