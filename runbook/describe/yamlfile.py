"""Reading one YAML file that may be hostile: bounded in size, depth, aliases and numbers.

A description is a small hand-written file, so anything far outside that shape is
refused, naming where it starts, instead of being followed: a path to /dev/zero or
a FIFO, a 2 GiB file, invalid UTF-8, 20,000 nested brackets (past Python's
recursion limit), an anchor that contains itself, a billion-laughs alias bomb (a
few KB of text that stands for 10^9 values once expanded), a key given twice
(PyYAML keeps the last and silently drops the first block; compose refuses it) and
numbers no description means (400 digits, .inf, .nan).
"""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path
from typing import Any

from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.error import Mark, MarkedYAMLError, YAMLError
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError
from yaml.resolver import Resolver

try:  # libyaml scans and parses ~5x faster; the composer stays in Python, to be bounded.
    from yaml.cyaml import CParser as _Parser
except ImportError:  # pragma: no cover - a PyYAML built without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, Parser):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)


MAX_BYTES = 1024 * 1024
MAX_DEPTH = 50
# Values once aliases are expanded, i.e. what later code walks: the calendar description has 908.
MAX_VALUES = 100_000
# Past int64 (docker's and compose's limit) a number in a description is a typo or an attack;
# the text is capped first, because int('1:1:1:...') of sexagesimal YAML is quadratic.
MAX_NUMBER = 2**63 - 1
MAX_NUMBER_TEXT = 100
_NOT_FILES = {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a pipe", stat.S_IFSOCK: "a socket"}


class YamlFileError(Exception):
    """A file that cannot be read as YAML; the message starts with `path[:line:column]: `."""


class Refused(MarkedYAMLError):
    """Valid YAML that this reader will not build (too deep, too big, a key twice, ...)."""


def read_yaml(path: Path) -> Any:
    """The data of a YAML file of one document, or YamlFileError saying where and why not."""
    text = read_text(path)
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    except YAMLError as exc:
        raise YamlFileError(_describe(path, text, exc)) from None
    finally:
        loader.dispose()


def read_text(path: Path) -> str:
    """At most MAX_BYTES of a regular file, strictly UTF-8; never blocks on a FIFO."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with open(fd, "rb") as handle:
            kind = stat.S_IFMT(os.fstat(fd).st_mode)
            if kind != stat.S_IFREG:
                raise YamlFileError(f"{path}: cannot read: {_NOT_FILES.get(kind, 'a device')}, not a file")
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise YamlFileError(f"{path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:  # a NUL byte in the path
        raise YamlFileError(f"{path}: cannot read: {exc}") from None
    if len(data) > MAX_BYTES:
        raise YamlFileError(f"{path}: larger than {MAX_BYTES // 1024} KiB, too large for a description")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        byte = data[exc.start : exc.start + 1].hex()
        raise YamlFileError(f"{path}:{line}:{column}: not UTF-8: byte 0x{byte} ({exc.reason})") from None


def _describe(path: Path, text: str, exc: YAMLError) -> str:
    prefix = "" if isinstance(exc, Refused) else "invalid YAML: "
    if isinstance(exc, MarkedYAMLError):
        problem = exc.problem or str(exc)
        if exc.context:
            context_line = f" on line {exc.context_mark.line + 1}" if exc.context_mark else ""
            problem = f"{problem} ({exc.context}{context_line})"
        where = _where(exc.problem_mark)
    elif isinstance(exc, ReaderError):
        problem = f"unacceptable character #x{exc.character:04x}: {exc.reason}"
        line = text.count("\n", 0, exc.position)
        where = f":{line + 1}:{exc.position - (text.rfind(chr(10), 0, exc.position) + 1) + 1}"
    else:
        problem, where = str(exc), ""
    return f"{path}{where}: {prefix}{problem}"


def _where(mark: Mark | None) -> str:
    return f":{mark.line + 1}:{mark.column + 1}" if mark else ""


class _BoundedComposer(Composer):
    """PyYAML's composer, refusing nodes that later code could not walk in bounded time.

    Each node's expanded size (its values, counting what its aliases stand for) is
    summed as it is composed, so an alias bomb is refused where it explodes,
    without ever being expanded.
    """

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0
        self._composed = 0
        self._sizes: dict[Node, int] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            target = self.anchors.get(event.anchor)
            if target is not None and target not in self._sizes:  # anchored, still being composed
                raise Refused(None, None, f"alias *{event.anchor} is inside its own anchor", event.start_mark)
            return super().compose_node(parent, index)
        if self._depth >= MAX_DEPTH:
            raise Refused(None, None, f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
        self._composed += 1
        if self._composed > MAX_VALUES:  # refused now, not after composing 1 MiB of brackets
            raise Refused(None, None, f"more than {MAX_VALUES} values in one file", event.start_mark)
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        self._sizes[node] = self._size(node)
        return node

    def _size(self, node: Node) -> int:
        if isinstance(node, SequenceNode):
            size = 1 + sum(self._sizes[child] for child in node.value)
        elif isinstance(node, MappingNode):
            _refuse_duplicate_keys(node)
            size = 1 + sum(self._sizes[key] + self._sizes[value] for key, value in node.value)
        else:
            size = 1
        if size > MAX_VALUES:
            problem = f"stands for more than {MAX_VALUES} values once its aliases are expanded"
            raise Refused(None, None, problem, node.start_mark)
        return size


def _refuse_duplicate_keys(node: MappingNode) -> None:
    first_seen: dict[tuple[str, str], Mark] = {}
    for key, _ in node.value:
        if not isinstance(key, ScalarNode):
            continue  # a collection as a key: SafeConstructor refuses it as unhashable
        first = first_seen.setdefault((key.tag, key.value), key.start_mark)
        if first is not key.start_mark:
            problem = f"key {key.value!r} is given twice in one mapping (first on line {first.line + 1})"
            raise Refused(None, None, problem, key.start_mark)


class _BoundedConstructor(SafeConstructor):
    """SafeConstructor refusing numbers out of range, and naming the place of any bad scalar."""

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:  # e.g. the timestamp 2024-13-45
            raise Refused(None, None, f"cannot read {_shown(node)}: {exc}", node.start_mark) from None

    def construct_bounded_int(self, node: ScalarNode) -> int:
        value: int = self.construct_yaml_int(_short_number(node))
        _refuse_out_of_range(value, node)
        return value

    def construct_bounded_float(self, node: ScalarNode) -> float:
        value: float = self.construct_yaml_float(_short_number(node))
        if not math.isfinite(value):
            raise Refused(None, None, f"{_shown(node)} is not a finite number", node.start_mark)
        _refuse_out_of_range(value, node)
        return value


_BoundedConstructor.add_constructor("tag:yaml.org,2002:int", _BoundedConstructor.construct_bounded_int)
_BoundedConstructor.add_constructor("tag:yaml.org,2002:float", _BoundedConstructor.construct_bounded_float)


def _short_number(node: ScalarNode) -> ScalarNode:
    if len(node.value) > MAX_NUMBER_TEXT:
        raise Refused(None, None, f"number {_shown(node)} is out of range", node.start_mark)
    return node


def _refuse_out_of_range(value: float, node: ScalarNode) -> None:
    if abs(value) > MAX_NUMBER:
        raise Refused(None, None, f"number {_shown(node)} is out of range (at most 2**63-1)", node.start_mark)


def _shown(node: Node) -> str:
    if not isinstance(node, ScalarNode):
        return node.tag
    text: str = node.value
    return repr(text) if len(text) <= 40 else f"{text[:20]!r}... ({len(text)} characters)"


class _Loader(_BoundedComposer, _Parser, _BoundedConstructor, Resolver):
    """libyaml's (or PyYAML's) parser, then the bounded composer and constructor."""

    def __init__(self, text: str) -> None:
        _Parser.__init__(self, text)
        _BoundedComposer.__init__(self)
        _BoundedConstructor.__init__(self)
        Resolver.__init__(self)


def read_yaml_lines(path: Path) -> dict[tuple[str | int, ...], int]:
    """Where each value of a YAML file starts: its path of keys and list indexes -> 1-based line.

    A mapping's entry is placed at its key's line (where an editor shows the field), a list item at
    the item's. Read with the same bounds as read_yaml; a file it refuses has no lines here ({}).
    """
    try:
        text = read_text(path)
    except YamlFileError:
        return {}
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except YAMLError:
        return {}
    finally:
        loader.dispose()
    lines: dict[tuple[str | int, ...], int] = {}
    if root is not None:
        _walk_lines(root, (), lines, 0)
    return lines


def _walk_lines(
    node: Node, where: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int], depth: int
) -> None:
    if depth > MAX_DEPTH:  # aliases may point back up: the composer refused deeper nesting already
        return
    if isinstance(node, MappingNode):
        for key, value in node.value:
            if isinstance(key, ScalarNode):
                inner = (*where, key.value)
                lines.setdefault(inner, key.start_mark.line + 1)
                _walk_lines(value, inner, lines, depth + 1)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            inner = (*where, index)
            lines.setdefault(inner, item.start_mark.line + 1)
            _walk_lines(item, inner, lines, depth + 1)
