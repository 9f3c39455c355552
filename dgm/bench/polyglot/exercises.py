"""Polyglot exercises read from a polyglot-benchmark checkout and turned into tasks.

Layout (Aider's polyglot-benchmark, Exercism's tracks):
`<language>/exercises/practice/<exercise>/` with `.docs/*.md` (the problem
statement), `.meta/config.json` (`files`: solution, test, example, editor,
invalidator) and the reference solution named by `example`. A task's
repository is the exercise without `.docs`, `.meta`, the hidden test files
and the Gradle wrapper (never used offline); its base commit is a git commit
of that tree built like dgm-mini's (fixed identity and date), whose sha is
computed here without git so that listing 225 tasks costs no process.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from dgm.bench.polyglot.languages import LANGUAGES, Language, enable_all_tests
from dgm.errors import UsageError

PRACTICE_DIR = "exercises/practice"
# Never part of a task's repository: the statement and the reference are
# given (or withheld) otherwise; Gradle's wrapper cannot run offline.
_LEFT_OUT_DIRS = {".docs", ".meta", ".approaches", ".articles", "gradle", ".git", "node_modules", "build", "target"}
_LEFT_OUT_FILES = {"gradlew", "gradlew.bat"}
_DOC_ORDER = ("introduction.md", "instructions.md", "instructions.append.md")


@dataclass(frozen=True)
class Exercise:
    language: str
    name: str
    root: Path
    files: dict[str, bytes]
    """The repository: path -> content (stubs, build files, visible helpers)."""
    solution: tuple[str, ...]
    tests: dict[str, bytes]
    """Hidden test files, every skipped test enabled."""
    reference: dict[str, bytes]
    """Solution path -> the reference content (files the reference adds included)."""
    statement: str
    difficulty: int | None = None
    """Exercism's 1..10 difficulty when the config states one (the benchmark's copy does not)."""

    @property
    def instance_id(self) -> str:
        return f"{self.language}__{self.name}"

    @property
    def lang(self) -> Language:
        return LANGUAGES[self.language]


def exercise_dirs(dataset: Path) -> list[tuple[str, Path]]:
    """(language, exercise directory) of every exercise, in a stable order."""
    if not dataset.is_dir():
        raise UsageError(f"polyglot dataset {dataset} is not a directory (give a polyglot-benchmark checkout)")
    found = []
    for language in sorted(LANGUAGES):
        practice = dataset / language / PRACTICE_DIR
        if practice.is_dir():
            found += [(language, d) for d in sorted(practice.iterdir()) if (d / ".meta" / "config.json").is_file()]
    if not found:
        raise UsageError(f"polyglot dataset {dataset} holds no exercises (expected "
                         f"<language>/{PRACTICE_DIR}/<exercise>/.meta/config.json for one of {', '.join(sorted(LANGUAGES))})")
    return found


def _read_tree(root: Path, hidden: set[str]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}

    def walk(directory: Path, prefix: str) -> None:
        for entry in sorted(directory.iterdir()):
            rel = prefix + entry.name
            if entry.is_symlink():
                continue
            if entry.is_dir():
                if entry.name not in _LEFT_OUT_DIRS:
                    walk(entry, rel + "/")
            elif entry.is_file() and rel not in hidden and entry.name not in _LEFT_OUT_FILES:
                files[rel] = entry.read_bytes()

    walk(root, "")
    return files


REFERENCE_CARGO = ".meta/Cargo-example.toml"


def with_reference_crates(cargo_toml: bytes, reference_cargo: bytes) -> bytes:
    """The exercise's Cargo.toml naming, besides its own, the crates its reference
    solution uses (Exercism keeps them in .meta/Cargo-example.toml), at any version:
    grading runs offline against Debian's packaged crates, one version of each, so
    a requirement such as itertools = "0.5" would match nothing. The agent may use
    them too (the statement says only the crates Cargo.toml names are available)."""
    try:
        wanted = tomllib.loads(reference_cargo.decode("utf-8")).get("dependencies") or {}
        present = tomllib.loads(cargo_toml.decode("utf-8")).get("dependencies") or {}
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return cargo_toml  # not ours to fix: the build reports it
    added = [name for name in wanted if name not in present]
    if not added:
        return cargo_toml
    lines = "".join(f'{name} = "*"\n' for name in added)
    text = cargo_toml.decode("utf-8")
    header = "[dependencies]\n"
    if header in text:
        return text.replace(header, header + lines, 1).encode()
    return (text.rstrip("\n") + "\n\n" + header + lines).encode()


def _reference_target(example: str, solution: list[str], examples: list[str]) -> str:
    """Where a reference file goes: the solution file of its name, else the one
    solution file of its extension, else beside the solution files of its extension."""
    name = Path(example).name
    for path in solution:
        if Path(path).name == name:
            return path
    suffix = Path(example).suffix
    same_ext = [p for p in solution if Path(p).suffix == suffix]
    if len(same_ext) == 1 and sum(Path(e).suffix == suffix for e in examples) == 1:
        return same_ext[0]
    folder = str(Path(same_ext[0]).parent) if same_ext else ""
    return name if folder in ("", ".") else f"{folder}/{name}"


def _statement(root: Path, language: str, solution: list[str]) -> str:
    docs = root / ".docs"
    names = [n for n in _DOC_ORDER if (docs / n).is_file()]
    names += sorted(p.name for p in docs.glob("*.md") if p.name not in _DOC_ORDER) if docs.is_dir() else []
    parts = [(docs / n).read_text(encoding="utf-8").strip() for n in names]
    parts.append("# Your task\n\nImplement the solution in " + ", ".join(f"`{p}`" for p in solution) +
                 f" ({language}). " + LANGUAGES[language].how_tests_run +
                 " The test files are not in the repository: they are added when your work is graded, "
                 "together with the original build files.")
    return "\n\n".join(p for p in parts if p) + "\n"


def load_exercise(language: str, root: Path) -> Exercise:
    where = root / ".meta" / "config.json"
    try:
        config = json.loads(where.read_text(encoding="utf-8"))
        files = config["files"]
        difficulty = config.get("difficulty")
        if difficulty is not None and (isinstance(difficulty, bool) or not isinstance(difficulty, int)
                                       or not 1 <= difficulty <= 10):
            raise TypeError(f"difficulty must be a whole number from 1 to 10, not {difficulty!r}")
        solution, tests, examples = list(files["solution"]), list(files["test"]), list(files["example"])
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{where}: not an exercise config ({type(exc).__name__}: {exc})") from None
    missing = [p for p in tests + examples if not (root / p).is_file()]
    if missing:
        raise UsageError(f"{root}: files named in .meta/config.json are missing: {', '.join(missing)}")
    repo = _read_tree(root, set(tests))
    if language == "rust" and "Cargo.toml" in repo and (root / REFERENCE_CARGO).is_file():
        repo["Cargo.toml"] = with_reference_crates(repo["Cargo.toml"], (root / REFERENCE_CARGO).read_bytes())
    hidden = {t: enable_all_tests(language, (root / t).read_text(encoding="utf-8")).encode() for t in tests}
    reference = {_reference_target(e, solution, examples): (root / e).read_bytes() for e in examples}
    return Exercise(language, root.name, root, repo, tuple(solution), hidden, reference,
                    _statement(root, language, solution), difficulty)


# -- git objects, computed ---------------------------------------------------------

def _object_sha(kind: str, data: bytes) -> bytes:
    return hashlib.sha1(f"{kind} {len(data)}\0".encode() + data).digest()


def _tree_sha(files: dict[str, bytes]) -> bytes:
    entries: dict[str, tuple[str, bytes]] = {}
    subtrees: dict[str, dict[str, bytes]] = {}
    for path, data in files.items():
        head, sep, rest = path.partition("/")
        if sep:
            subtrees.setdefault(head, {})[rest] = data
        else:
            entries[head] = ("100644", _object_sha("blob", data))
    for name, sub in subtrees.items():
        entries[name] = ("40000", _tree_sha(sub))
    # git orders a tree's entries by name, a directory's as if it ended in "/".
    order = sorted(entries, key=lambda n: n.encode() + (b"/" if entries[n][0] == "40000" else b""))
    body = b"".join(f"{entries[n][0]} {n}\0".encode() + entries[n][1] for n in order)
    return _object_sha("tree", body)


def commit_sha(files: dict[str, bytes]) -> str:
    """The sha `dgm.bench.dgm_mini.build_repo` gives a tree of these files (all mode 0644)."""
    from dgm.bench.dgm_mini.benchmark import COMMIT_EPOCH, COMMIT_MESSAGE, _IDENTITY

    ident = lambda who: (f"{_IDENTITY[f'GIT_{who}_NAME']} <{_IDENTITY[f'GIT_{who}_EMAIL']}> "  # noqa: E731
                         f"{COMMIT_EPOCH} +0000")
    body = (f"tree {_tree_sha(files).hex()}\nauthor {ident('AUTHOR')}\ncommitter {ident('COMMITTER')}\n\n"
            f"{COMMIT_MESSAGE}").encode()
    return _object_sha("commit", body).hex()


# -- diffs ---------------------------------------------------------------------------

def _lines(data: bytes) -> list[str]:
    text = data.decode("utf-8", errors="surrogateescape")
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n\\ No newline at end of file\n"
    return lines


def file_diff(path: str, old: bytes | None, new: bytes) -> str:
    """A git-style unified diff taking `path` from `old` (None: absent) to `new`."""
    if old == new:
        return ""
    head = f"diff --git a/{path} b/{path}\n"
    if old is None:
        head += "new file mode 100644\n"
    body = list(difflib.unified_diff(_lines(old or b""), _lines(new), "/dev/null" if old is None else f"a/{path}",
                                     f"b/{path}", n=3))
    if not body:
        return ""
    # difflib writes "--- a/x\t" with no date; git wants the bare names.
    body[0], body[1] = body[0].rstrip() + "\n", body[1].rstrip() + "\n"
    return head + "".join(body)


def files_diff(before: dict[str, bytes], after: dict[str, bytes]) -> str:
    return "".join(file_diff(p, before.get(p), after[p]) for p in sorted(after))
