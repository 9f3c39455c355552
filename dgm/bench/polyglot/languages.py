"""How each of Polyglot's six languages is built, tested and guarded.

Test commands follow DGM's polyglot harness (pytest -rA, `go test`, `cargo
test -- --include-ignored`, jest with `xtest` turned into `test`, cmake with
EXERCISM_RUN_ALL_TESTS), with two changes forced by running offline: Java is
compiled with javac and run with JUnit's console launcher instead of Gradle
(its wrapper and Maven Central cannot be reached), and Rust resolves crates
from Debian's sources (`/.cargo/config.toml` in the image). Each command asks
its runner for a machine-readable report where one exists (`go test -json`,
jest `--json`, JUnit XML, Catch2's JUnit reporter), so grading can name the
tests that failed; the exit status alone decides resolved.

Every command is one `( ... )` group: grading reads its exit status right
after it, and a failing step inside must not end the grading script.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Where the image keeps what the commands need (set by sandboxes/build_polyglot_image.sh).
NODE_MODULES_ENV = "DGM_NODE_MODULES"
JAVA_CLASSPATH_ENV = "DGM_JAVA_CLASSPATH"


@dataclass(frozen=True)
class Language:
    name: str
    parser: str
    """Which `dgm.bench.polyglot.results` parser reads the test log."""
    build_files: tuple[str, ...]
    """Files of the exercise that configure the build or the test run: the
    benchmark's, put back as they were before the tests run."""
    foreign_test_globs: tuple[str, ...]
    """git pathspecs of files an agent must not add: new test files or
    test-runner configuration (removed before the tests run if it did)."""
    how_tests_run: str
    """What the agent is told (it never sees the test files)."""

    def test_command(self, exercise: str, test_files: tuple[str, ...]) -> str:
        return _COMMANDS[self.name](exercise, test_files)


def _python(exercise: str, test_files: tuple[str, ...]) -> str:
    files = " ".join(test_files)
    return f"( python3 -m pytest -rA --tb=short -p no:cacheprovider {files} )"


def _go(exercise: str, test_files: tuple[str, ...]) -> str:
    return "( go test -json ./... )"


def _rust(exercise: str, test_files: tuple[str, ...]) -> str:
    return "( cargo test --offline --quiet -- --include-ignored )"


def _javascript(exercise: str, test_files: tuple[str, ...]) -> str:
    # The image's shared node_modules stands in for `npm install`; jest's JSON
    # report goes to a file and is printed after its human-readable output.
    return (f"( rm -rf node_modules && ln -s \"${NODE_MODULES_ENV}\" node_modules && "
            "node_modules/.bin/jest --ci --json --outputFile=/tmp/.dgm-jest.json ./*; rc=$?; "
            "echo; cat /tmp/.dgm-jest.json 2>/dev/null; exit $rc )")


def _java(exercise: str, test_files: tuple[str, ...]) -> str:
    out = "/tmp/.dgm-java"
    return (f"( set -e; rm -rf {out}; mkdir -p {out}/classes {out}/reports; "
            f"find src/main/java src/test/java -name '*.java' > {out}/sources; "
            f"javac -nowarn -encoding UTF-8 -d {out}/classes -cp \"${JAVA_CLASSPATH_ENV}\" @{out}/sources; "
            f"rc=0; java -jar \"${{{JAVA_CLASSPATH_ENV}%%:*}}\" --disable-banner --details=tree "
            f"--class-path \"{out}/classes:${JAVA_CLASSPATH_ENV}\" --scan-class-path --fail-if-no-tests "
            f"--reports-dir {out}/reports || rc=$?; cat {out}/reports/*.xml 2>/dev/null; exit $rc )")


def _cpp(exercise: str, test_files: tuple[str, ...]) -> str:
    # The CMakeLists name the executable and its sources after the directory,
    # so the exercise is built from a copy named after it. EXERCISM_TEST_SUITE is
    # Exercism's own test runner's setting: the tests link the image's prebuilt
    # Catch2 main (Debian's catch2) instead of compiling the 656 kB header's main
    # in every run, which took most of a C++ grading (25-150 s). That main's object
    # also holds Catch's runner, which the tests need, so a main() of the solution's
    # own still fails the link as a duplicate, as in the exercise's own build.
    work = f"/tmp/.dgm-cpp/{exercise}"
    return (f"( set -e; rm -rf /tmp/.dgm-cpp; mkdir -p /tmp/.dgm-cpp; cp -r . {work}; cd {work}; "
            "mkdir -p build; cd build; cmake -DEXERCISM_RUN_ALL_TESTS=1 -DEXERCISM_TEST_SUITE=1 "
            f"-G 'Unix Makefiles' .. >/dev/null; make {exercise}; ./{exercise} --reporter junit )")


_COMMANDS = {"python": _python, "go": _go, "rust": _rust, "javascript": _javascript, "java": _java, "cpp": _cpp}

LANGUAGES: dict[str, Language] = {
    "python": Language(
        "python", "pytest", (),
        ("*_test.py", "test_*.py", "conftest.py"),
        "Tests are pytest files run with `python3 -m pytest -rA` in the repository root."),
    "go": Language(
        "go", "go-json", ("go.mod", "go.sum", "go.work"),
        ("*_test.go", "go.work", "vendor"),
        "Tests are Go tests (`*_test.go`) run with `go test ./...` in the repository root (Go 1.19, no network)."),
    "rust": Language(
        "rust", "cargo", ("Cargo.toml", "Cargo.lock", "build.rs"),
        ("tests", "build.rs", ".cargo", "Cargo.lock", "rust-toolchain", "rust-toolchain.toml"),
        "Tests are integration tests under `tests/` run with `cargo test -- --include-ignored` "
        "(offline: only the crates Cargo.toml already names are available)."),
    "javascript": Language(
        "javascript", "jest", ("package.json", "babel.config.js", ".npmrc", ".eslintrc"),
        ("*.spec.js", "*.test.js", "jest.config.*", ".babelrc*", "babel.config.*", "node_modules", "__mocks__"),
        "Tests are jest specs (`*.spec.js`, every `xtest` enabled) run with `jest ./*` in the repository root; "
        "code is transpiled by Babel with @exercism/babel-preset-javascript."),
    "java": Language(
        "java", "junit-xml", ("build.gradle", "settings.gradle"),
        ("src/test", "src/main/resources", "src/test/resources"),
        "Tests are JUnit 5 tests under `src/test/java` (AssertJ assertions, every @Disabled test enabled), "
        "compiled with javac together with `src/main/java` and run with the JUnit console launcher (Java 17)."),
    "cpp": Language(
        "cpp", "catch2-junit", ("CMakeLists.txt", "test/catch.hpp", "test/tests-main.cpp"),
        ("*_test.cpp", "test"),
        "Tests are Catch2 tests built with CMake and make (`cmake -DEXERCISM_RUN_ALL_TESTS=1 ..` in a build "
        "directory, g++ with -Wall -Wextra -Wpedantic -Werror, C++17), then run."),
}

_JS_SKIPPED = re.compile(r"\bxtest\(")
_JS_SKIPPED_IT = re.compile(r"\bxit\(")
_JAVA_DISABLED = re.compile(r"^[ \t]*@Disabled\b(\([^)]*\))?[ \t]*\r?\n", re.MULTILINE)


def enable_all_tests(language: str, text: str) -> str:
    """The test file with its skipped tests turned on, as DGM's harness runs them
    (jest `xtest(` -> `test(`; JUnit's `@Disabled` dropped; Rust's `#[ignore]`
    tests run through `--include-ignored`, C++'s through EXERCISM_RUN_ALL_TESTS)."""
    if language == "javascript":
        return _JS_SKIPPED_IT.sub("it(", _JS_SKIPPED.sub("test(", text))
    if language == "java":
        return _JAVA_DISABLED.sub("", text)
    return text
