"""Reading the files given to ``curfew render`` / ``curfew validate``: files or directories of
multi-document YAML (or JSON), each document labelled by file, index and name for messages."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SUFFIXES = (".yaml", ".yml", ".json")


class UsageError(Exception):
    """The command was called wrongly (exit 2): a path that does not exist, nothing to read."""


class InputError(Exception):
    """An input file is unusable (exit 1); the message is one line naming file and document."""


@dataclass(frozen=True)
class Document:
    """One object read from a file."""

    path: str
    index: int
    """1-based position in its file (items of a ``List`` share their document's index)."""
    obj: Mapping[str, Any]
    item: int | None = None

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @property
    def name(self) -> str:
        metadata = self.obj.get("metadata")
        name = metadata.get("name") if isinstance(metadata, Mapping) else None
        return str(name) if name else "unnamed"

    @property
    def where(self) -> str:
        """``file: document 2 (storefront)``: the prefix of every message about it."""
        item = f", item {self.item}" if self.item is not None else ""
        return f"{self.path}: document {self.index}{item} ({self.name})"


def find_files(paths: list[str]) -> list[Path]:
    """The files named, and every *.yaml / *.yml / *.json under the directories named, each
    directory's files in sorted order."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
        elif path.is_file() or raw == "-":
            out.append(path)
        else:
            raise UsageError(f"{raw}: no such file or directory")
    return out


def _documents_of(path: Path) -> Iterator[Document]:
    label = "-" if str(path) == "-" else str(path)
    try:
        text = sys.stdin.read() if label == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{label}: cannot read: {exc}") from None
    try:
        raw_docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{label}: invalid YAML{at}: {problem}") from None
    for index, obj in enumerate(raw_docs, start=1):
        if obj is None:
            continue
        if not isinstance(obj, Mapping):
            raise InputError(
                f"{label}: document {index}: expected a Kubernetes object, got a "
                f"{type(obj).__name__}"
            )
        if str(obj.get("kind", "")).endswith("List") and isinstance(obj.get("items"), list):
            for item, sub in enumerate(obj["items"], start=1):
                if not isinstance(sub, Mapping):
                    raise InputError(f"{label}: document {index}, item {item}: expected an object")
                yield Document(label, index, sub, item)
        else:
            yield Document(label, index, obj)


def load_documents(paths: list[str]) -> list[Document]:
    """Every document of every file, in the order given. Raises UsageError or InputError."""
    files = find_files(paths)
    if not files:
        raise UsageError(f"no *.yaml, *.yml or *.json files under {', '.join(paths)}")
    return [doc for path in files for doc in _documents_of(path)]


def is_policy(doc: Document) -> bool:
    return doc.kind == "SessionPolicy" and str(doc.obj.get("apiVersion", "")).startswith(
        "curfew.dev/"
    )
