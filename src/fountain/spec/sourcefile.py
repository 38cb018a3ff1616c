"""Text files and YAML documents read with their positions, for error messages that point home.

:func:`read_text_file` reads a UTF-8 file or explains exactly what is wrong with it (missing,
directory, FIFO, too large, binary, not UTF-8, unreadable); limits in :mod:`fountain.spec.paths`. :func:`compose_yaml` parses YAML with safe-loading
semantics and records, in a :class:`Locator`, the node of every key path, so that any later check
can report ``file:line:col`` (1-based) for a key or a value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fountain.errors import Problem, SpecError
from fountain.safety import FileProblem, read_limited

# A key path into the YAML document: mapping keys and list indices, e.g. ("model", "temperature").
KeyPath = tuple[str | int, ...]

_STR_TAG = "tag:yaml.org,2002:str"
__all__ = ["FileProblem", "Locator", "compose_yaml", "key_path", "read_text_file"]
_MAX_VALUES = 200_000


def _read_bytes(path: Path, *, what: str, where: str) -> bytes:
    # One place that touches the disk, so tests can simulate an unreadable file as root.
    return read_limited(path, what, where)


def read_text_file(path: Path, what: str, location: str | None = None) -> str:
    """Text of a UTF-8 regular file of at most ``MAX_SPEC_FILE_BYTES``, or raise ``FileProblem``
    naming what is wrong with it (missing, a loop of symlinks, a directory, FIFO or device, too
    large, unreadable, binary, not UTF-8)."""
    where = location or str(path)
    try:
        raw = _read_bytes(path, what=what, where=where)
    except PermissionError:
        raise FileProblem(
            Problem(f"cannot read {what} {path}: permission denied", where, f"make it readable, e.g. chmod u+r {path}")
        ) from None
    except OSError as error:
        raise FileProblem(Problem(f"cannot read {what} {path}: {error.strerror or error}", where)) from None
    if b"\x00" in raw:
        named = str(path) if path.name == what else f"{what} {path}"  # not "setup.yaml x/setup.yaml"
        raise FileProblem(
            Problem(
                f"{named} is a binary file (it contains NUL bytes), not text",
                where,
                "save it as UTF-8 text (UTF-16 files also contain NUL bytes)",
            )
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise FileProblem(
            Problem(
                f"{what} is not valid UTF-8 text (byte 0x{raw[error.start]:02x} cannot be decoded)",
                f"{path}:{line}:{column}",
                "save the file as UTF-8",
            )
        ) from None
    return text


def key_path(path: KeyPath) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


class Locator:
    """Maps key paths of a YAML document to ``file:line:col`` (1-based)."""

    def __init__(self, file: str, text: str):
        self.file = file
        self.lines = text.splitlines()
        self.values: dict[KeyPath, Any] = {}  # path -> yaml Node of the value
        self.keys: dict[KeyPath, Any] = {}  # path -> yaml Node of the key

    def _format(self, mark: Any) -> str:
        return f"{self.file}:{mark.line + 1}:{mark.column + 1}"

    def at(self, path: KeyPath, *, key: bool = False) -> str:
        """Location of the value at ``path`` (or of its key), else of the nearest parent."""
        path = tuple(path)
        while True:
            node = (self.keys.get(path) if key else None) or self.values.get(path)
            if node is not None:
                return self._format(node.start_mark)
            if not path:
                return f"{self.file}:1:1"
            path = path[:-1]

    def in_value(self, path: KeyPath, line_in_value: int | None) -> str:
        """Location of line ``line_in_value`` (1-based) inside a (block) string value."""
        node = self.values.get(tuple(path))
        if node is None or not line_in_value:
            return self.at(path)
        start = node.start_mark.line + 1  # 1-based line where the value starts
        if getattr(node, "style", None) in ("|", ">"):
            line = start + line_in_value  # the content begins below the indicator line
        else:
            line = start + line_in_value - 1
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        column = len(text) - len(text.lstrip()) + 1
        return f"{self.file}:{line}:{column}"

    def content_line(self, path: KeyPath) -> int | None:
        """1-based file line of the first content line of a string value."""
        node = self.values.get(tuple(path))
        if node is None:
            return None
        start: int = node.start_mark.line + 1
        return start + 1 if getattr(node, "style", None) in ("|", ">") else start

    def as_dict(self) -> dict[str, str]:
        return {key_path(path): self.at(path) for path in self.values}


def _yaml_hint(problem: str, line_text: str, opened: Any = None) -> str:
    """The hint of a YAML syntax error; ``opened``: the mark where an unclosed ``[`` or ``{``
    began (the error is found later, where the parser gives up)."""
    if opened is not None:
        return (
            f"the [ or {{ at line {opened.line + 1}, column {opened.column + 1} is never closed: if the value "
            'is text that starts with it, put the whole value in quotes, e.g. key: "[draft] ..."'
        )
    if "\t" in line_text:
        return "YAML does not allow tab characters for indentation: use spaces"
    if "cannot start any token" in problem:
        return "quote the value (or use a block scalar `key: |`): a plain value cannot start with %, @ or `"
    if "mapping values are not allowed" in problem:
        return (
            "a value contains ': ' — put it in quotes, or write multi-line text as a block "
            "scalar (`key: |` and the text indented below)"
        )
    if "could not find expected ':'" in problem:
        return "a line is missing its `key:` or is indented differently from its neighbours"
    if "expected a single document" in problem:
        return "setup.yaml holds one document: remove the extra `---` separator"
    return "check the indentation of this line and of the line above it"


def _unclosed_flow(error: Any) -> Any:
    """Where an unclosed flow collection (``[`` or ``{``) began, when that is what failed."""
    context = error.context or ""
    if error.context_mark is not None and error.problem_mark is not None and "flow" in context:
        return error.context_mark
    return None


def compose_yaml(text: str, locator: Locator, problems: list[Problem]) -> Any:
    """Parse YAML safely while recording the node of every key path; None for an empty document."""
    import yaml

    loader = None
    try:
        loader = yaml.SafeLoader(text)  # inside the try: its reader refuses control characters at once
        node = loader.get_single_node()
        if node is None:
            return None
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "invalid YAML"
        if mark is None:
            raise SpecError(f"YAML syntax error: {problem}", location=locator.file) from None
        line_text = locator.lines[mark.line] if mark.line < len(locator.lines) else ""
        message = f"YAML syntax error: {problem}"
        if error.context and error.problem:
            message += f" ({error.context})"
        if line_text.strip():
            message += f"\n    {line_text.rstrip()}\n    {' ' * mark.column}^"
        raise SpecError(
            message,
            location=f"{locator.file}:{mark.line + 1}:{mark.column + 1}",
            hint=_yaml_hint(problem, line_text, _unclosed_flow(error)),
        ) from None
    except yaml.reader.ReaderError as error:
        raise _reader_error(error, text, locator) from None
    except yaml.YAMLError as error:
        raise SpecError(f"YAML error: {error}", location=locator.file) from None
    except RecursionError:
        raise SpecError(
            "setup.yaml is nested too deeply to read",
            location=locator.file,
            hint="a spec needs at most three levels of nesting",
        ) from None
    finally:
        if loader is not None:
            loader.dispose()
    memo: dict[int, int] = {}
    expanded = _expanded_size(node, memo)
    # An alias bomb stands for far more values than it writes; a long plain document does not.
    if expanded > _MAX_VALUES and expanded > 4 * len(memo):
        raise SpecError(
            f"setup.yaml expands to more than {_MAX_VALUES:,} values (through YAML aliases)",
            location=locator.file,
            hint="write the values out instead of nesting aliases (*name)",
        )
    _walk(node, (), locator, problems, set())
    return data


def _reader_error(error: Any, text: str, locator: Locator) -> SpecError:
    """A located SpecError for a character YAML does not allow (ESC, form feed, other controls)."""
    position = int(getattr(error, "position", 0) or 0)
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    character = getattr(error, "character", "")
    code = ord(character) if isinstance(character, str) and character else int(character or 0)
    return SpecError(
        f"setup.yaml contains the control character U+{code:04X}, which YAML does not allow",
        location=f"{locator.file}:{line}:{column}",
        hint="remove it (an escape sequence or a page break pasted from a terminal or a document); "
        'write it as "\\x1b" inside a double-quoted string if you need it',
    )


def _expanded_size(node: Any, memo: dict[int, int]) -> int:
    """Number of values the document stands for once aliases are expanded (memoised per node)."""
    import yaml

    known = memo.get(id(node))
    if known is not None:
        return known
    memo[id(node)] = 1  # guards against cycles while this node is being counted
    if isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(item, memo) for item in node.value)
    else:
        size = 1
    memo[id(node)] = size
    return size


def _walk(node: Any, path: KeyPath, locator: Locator, problems: list[Problem], seen_nodes: set[int]) -> None:
    import yaml

    locator.values[path] = node
    if id(node) in seen_nodes:
        return  # an alias of a node walked already: walking it again could take exponential time
    seen_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                problems.append(
                    Problem(
                        f"{key_path(path)}: a key must be a plain name, not a list or mapping",
                        locator._format(key_node.start_mark),
                    )
                )
                continue
            key = key_node.value
            if _has_lone_surrogate(key):
                problems.append(_surrogate_problem(path, key_node, locator))
                continue
            if key_node.tag != _STR_TAG:
                problems.append(
                    Problem(
                        f"{key_path(path + (key,))}: the key `{key}` is read as a "
                        f"{key_node.tag.rsplit(':', 1)[-1]}, not a name",
                        locator._format(key_node.start_mark),
                        f'quote it: "{key}":',
                    )
                )
            if key in seen:
                problems.append(
                    Problem(
                        f"{key_path(path + (key,))}: the key is given twice (line "
                        f"{seen[key].start_mark.line + 1} and line {key_node.start_mark.line + 1}); "
                        "YAML would silently keep the last one",
                        locator._format(key_node.start_mark),
                        "remove one of them",
                    )
                )
            seen[key] = key_node
            locator.keys[path + (key,)] = key_node
            _walk(value_node, path + (key,), locator, problems, seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, path + (index,), locator, problems, seen_nodes)
    elif isinstance(node.value, str) and _has_lone_surrogate(node.value):
        problems.append(_surrogate_problem(path, node, locator))


def _has_lone_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _surrogate_problem(path: tuple[Any, ...], node: Any, locator: Locator) -> Problem:
    return Problem(
        f"{key_path(path)}: holds a lone UTF-16 surrogate (an escape like \\ud800 without its pair), which is not text",
        locator._format(node.start_mark),
        "write the character itself, or both halves of the pair",
    )
