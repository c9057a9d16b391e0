"""Definition files as untrusted YAML: plain data out, or problems that name the file and path.

Definition files are small hand-written texts, so the reader bounds what a crafted file can
cost: its size, its nesting, how far aliases expand (a "billion laughs"), self-referencing
aliases, tags (core YAML types only, never Python objects), unreadable dates and numbers, and
duplicate keys (which PyYAML would otherwise keep silently, the last one winning).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml


@dataclass(frozen=True)
class Problem:
    path: str
    message: str


class DefinitionError(Exception):
    """One or more problems in a definition; nothing was stored."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p.path}: {p.message}" for p in problems))


def format_path(parts: Iterator[Any] | list[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


# The seed poll lies far inside these bounds.
MAX_FILE_BYTES = 1_000_000
MAX_VALUES = 100_000  # values in the document once every alias is expanded
MAX_DEPTH = 30  # the format needs 7 levels
CORE_TAGS = {
    f"tag:yaml.org,2002:{name}"
    for name in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp", "merge")
}
NUMERIC_TAGS = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp"}


class _Loader(yaml.SafeLoader):
    """The safe loader, refusing deep nesting as it scans: the composer recurses per level, and
    a megabyte of "[" took seconds to reach Python's recursion limit."""

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        if self.flow_level >= MAX_DEPTH:
            raise _Refused(None, f"nested more than {MAX_DEPTH} levels deep {_line(self)}")
        super().fetch_flow_collection_start(TokenClass)

    def add_indent(self, column: int) -> bool:
        if len(self.indents) >= MAX_DEPTH:
            raise _Refused(None, f"nested more than {MAX_DEPTH} levels deep {_line(self)}")
        return super().add_indent(column)


def _line(loader: yaml.SafeLoader) -> str:
    return f"(line {loader.get_mark().line + 1})"


class _Refused(Exception):
    def __init__(self, path: list[Any] | None, message: str) -> None:
        self.problem = Problem("(file)" if path is None else format_path(path), message)


class _Structure:
    """Walks the composed YAML graph once per node (aliases are memoised, not re-walked), so
    the check costs what the file costs, however far and deep its aliases would expand."""

    def __init__(self, loader: yaml.SafeLoader) -> None:
        self.loader = loader
        self.seen: dict[int, tuple[int, int]] = {}  # node -> (values, levels) once expanded
        self.open: set[int] = set()

    def check(self, node: yaml.Node, path: list[Any], depth: int = 0) -> tuple[int, int]:
        line = f"(line {node.start_mark.line + 1})"
        if id(node) in self.open:
            raise _Refused(path, f"an alias refers to a value that contains it {line}")
        if id(node) not in self.seen:
            self.open.add(id(node))
            self.seen[id(node)] = self._expand(node, path, depth, line)
            self.open.discard(id(node))
        values, levels = self.seen[id(node)]
        if depth + levels > MAX_DEPTH:
            raise _Refused(path, f"nested more than {MAX_DEPTH} levels deep {line}")
        return values, levels

    def _expand(self, node: yaml.Node, path: list[Any], depth: int, line: str) -> tuple[int, int]:
        if node.tag not in CORE_TAGS:
            raise _Refused(path, f"the tag {node.tag} is not allowed {line}")
        if isinstance(node, yaml.ScalarNode) and "\x00" in node.value:
            # PostgreSQL stores no NUL character in text or JSON: refused here, not by a 500.
            raise _Refused(path, f"contains a NUL character (\\0) {line}")
        children: list[tuple[Any, yaml.Node]] = []
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or "\x00" in key_node.value:
                    raise _Refused(path, f"a key must be plain text {line}")
                children.append((key_node.value, value_node))
        elif isinstance(node, yaml.SequenceNode):
            children = list(enumerate(node.value))
        elif node.tag in NUMERIC_TAGS:
            try:
                # Dates like 2024-13-45 and integers of thousands of digits raise ValueError.
                self.loader.construct_object(node)
            except ValueError as error:
                raise _Refused(path, f"'{node.value}' cannot be read: {error} {line}") from None
        values, levels = 1, 0
        for key, child in children:
            child_values, child_levels = self.check(child, [*path, key], depth + 1)
            values, levels = values + child_values, max(levels, child_levels + 1)
            if values > MAX_VALUES:
                raise _Refused(path, f"expands to more than {MAX_VALUES} values through aliases")
        return values, levels


def _duplicate_keys(node: yaml.Node, path: list[Any]) -> Iterator[Problem]:
    """PyYAML keeps the last of two equal mapping keys silently; we refuse them instead."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                line = key_node.start_mark.line + 1
                yield Problem(format_path([*path, key]), f"duplicate key '{key}' (line {line})")
            seen.add(key)
            yield from _duplicate_keys(value_node, [*path, key])
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, [*path, index])


def too_large(size: int) -> Problem:
    return Problem("(file)", f"the file has {size:,} bytes; the limit is {MAX_FILE_BYTES:,}")


def parse_yaml(text: str, source: str) -> dict[str, Any]:
    """Plain data from YAML text: core tags only, aliases bounded, no duplicate keys."""
    if len(text) > MAX_FILE_BYTES or len(text.encode()) > MAX_FILE_BYTES:
        raise DefinitionError(source, [too_large(len(text.encode()))])
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise DefinitionError(source, [Problem("(file)", "the file is empty")])
        _Structure(loader).check(node, [])
        duplicates = list(_duplicate_keys(node, []))
        if duplicates:
            raise DefinitionError(source, duplicates)
        data = loader.construct_document(node)
    except _Refused as refused:
        raise DefinitionError(source, [refused.problem]) from None
    except yaml.YAMLError as error:
        raise DefinitionError(source, [Problem("(file)", f"not valid YAML: {error}")]) from None
    except RecursionError:
        # The composer recurses once per level of brackets before any of our checks can run.
        problem = Problem("(file)", f"nested more than {MAX_DEPTH} levels deep")
        raise DefinitionError(source, [problem]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise DefinitionError(source, [Problem("(top level)", "expected a mapping of fields")])
    return data
