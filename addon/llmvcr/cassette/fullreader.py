"""The full reader: any YAML file go-vcr would load, through PyYAML's nodes.

A loader that guesses no types (libyaml's when present) composes the document; each field is
then converted by the reader of its Kind (`fields.py`), so every error names the key path and
the line: `interactions[3].response.code: expected an integer, found 'abc'`. Aliases are refused
(an alias bomb costs its size, not its expansion). Unknown keys are kept as plain data, with
which scalars were plain, so they write back unchanged.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from functools import lru_cache

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from . import fields
from .fields import LINE_BREAKING, LINE_BREAKING_NAMES, Kind, Omit, Section
from .govalues import go_int, parse_duration
from .model import (
    Cassette,
    CassetteError,
    Chunk,
    Headers,
    Interaction,
    PlainText,
    Request,
    Response,
    Style,
)
from .scalars import resolves_to_non_string

try:
    from yaml import CBaseLoader as _YamlLoader
except ImportError:  # PyYAML built without libyaml: same nodes, slower
    from yaml import BaseLoader as _YamlLoader  # type: ignore[assignment]

_STR_TAG = "tag:yaml.org,2002:str"
_INT_TAG = "tag:yaml.org,2002:int"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_BINARY_TAG = "tag:yaml.org,2002:binary"
_NULLS = frozenset(("", "~", "null", "Null", "NULL"))
_TRUE = frozenset(["true", "True", "TRUE", "y", "Y", "yes", "Yes", "YES", "on", "On", "ON"])
_FALSE = frozenset(["false", "False", "FALSE", "n", "N", "no", "No", "NO", "off", "Off", "OFF"])


class _FieldError(Exception):
    """A bad value: the node where it is, and the message; the path is added on the way up."""

    def __init__(self, node: Node | None, message: str, path: str = "") -> None:
        super().__init__(message)
        self.node = node
        self.message = message
        self.path = path

    def under(self, name: str) -> _FieldError:
        self.path = f"{name}.{self.path}" if self.path else name
        return self


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return "a scalar"


def _is_null(node: ScalarNode) -> bool:
    return not node.style and node.tag == _STR_TAG and node.value in _NULLS


def _decode_binary(node: ScalarNode) -> bytes:
    text = node.value.replace("\n", "").replace("\r", "")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _FieldError(node, "!!binary value is not base64") from None


def _read_text(node: Node) -> str:
    if type(node) is not ScalarNode:
        raise _FieldError(node, f"expected a string, found {_kind(node)}")
    if node.tag == _BINARY_TAG:
        return _decode_binary(node).decode("utf-8", "surrogateescape")
    if not node.style and node.value in _NULLS:
        return ""
    return node.value


def _read_body(node: Node) -> bytes:
    if type(node) is not ScalarNode:
        raise _FieldError(node, f"expected a string, found {_kind(node)}")
    if node.tag == _BINARY_TAG:
        return _decode_binary(node)
    value = node.value
    if not node.style and value in _NULLS:
        return b""
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise _FieldError(node, "string holds a lone surrogate") from None



def _read_int(node: Node) -> int:
    if type(node) is not ScalarNode:
        raise _FieldError(node, f"expected an integer, found {_kind(node)}")
    value = node.value
    if node.style and node.tag != _INT_TAG:
        raise _FieldError(
            node, f"quoted integer {node.style}{value}{node.style} (go-vcr needs a plain number)"
        )
    if _is_null(node):
        return 0
    number = go_int(value) if node.tag in (_STR_TAG, _INT_TAG) else None
    if number is None:
        raise _FieldError(node, f"expected an integer, found {value!r}")
    return number


def _read_bool(node: Node) -> bool:
    if type(node) is not ScalarNode:
        raise _FieldError(node, f"expected true or false, found {_kind(node)}")
    if node.style and node.tag != _BOOL_TAG:
        raise _FieldError(node, f"quoted bool {node.value!r} (go-vcr needs a plain true or false)")
    if _is_null(node):
        return False
    if node.value in _TRUE:
        return True
    if node.value in _FALSE:
        return False
    raise _FieldError(node, f"expected true or false, found {node.value!r}")


def _read_duration(node: Node) -> int:
    text = _read_text(node)
    try:
        return parse_duration(text)
    except ValueError as e:
        raise _FieldError(node, f"{e} (Go duration syntax expected, such as 1.5s)") from None


def _read_string_list(node: Node) -> list[str]:
    if type(node) is SequenceNode:
        out = []
        for item in node.value:
            if type(item) is ScalarNode and item.tag == _STR_TAG and item.style:
                out.append(item.value)
            else:
                out.append(_read_text(item))
        return out
    if type(node) is ScalarNode and _is_null(node):
        return []
    raise _FieldError(node, f"expected a list of strings, found {_kind(node)}")


def _read_string_lists(node: Node, lines: bool = False) -> Headers:
    """A map of string lists; `lines`: names and values are replayed on HTTP header lines, so
    none may hold CR, LF or NUL (one would start another header, such as a Set-Cookie)."""
    if type(node) is not MappingNode:
        if type(node) is ScalarNode and _is_null(node):
            return {}
        raise _FieldError(node, f"expected a map of string lists, found {_kind(node)}")
    out: Headers = {}
    for key_node, value_node in node.value:
        name = _read_text(key_node)
        if name in out:
            raise _FieldError(key_node, f"duplicate key {name!r}")
        if lines:
            _check_line(key_node, name, f"header name {name!r}")
        if type(value_node) is ScalarNode and not _is_null(value_node):
            # the value is not shown: a header value may be a credential
            raise _FieldError(
                value_node, "a scalar where a list of strings belongs (write it as `- value`)"
            ).under(name)
        try:
            values = out[name] = _read_string_list(value_node)
        except _FieldError as e:
            raise e.under(name) from None
        if lines:
            for n, value in enumerate(values):
                _check_line(value_node.value[n], value, "the value", under=f"{name}[{n}]")
    return out


def _read_headers(node: Node) -> Headers:
    return _read_string_lists(node, lines=True)


def _read_line(node: Node) -> str:
    text = _read_text(node)
    _check_line(node, text, "the value")
    return text


def _check_line(node: Node, text: str, what: str, under: str = "") -> None:
    """Refuse CR, LF and NUL in text a replay sends on an HTTP header or status line."""
    found = LINE_BREAKING.search(text)
    if found is not None:
        error = _FieldError(
            node,
            f"{what} holds {LINE_BREAKING_NAMES[found[0]]}; a status or header must not hold "
            "CR, LF or NUL (a replay would send it inside an HTTP header line)",
        )
        raise error.under(under) if under else error


def _read_chunks(node: Node) -> list[Chunk]:
    if type(node) is not SequenceNode:
        raise _FieldError(node, f"expected a list of {{at, size}} entries, found {_kind(node)}")
    chunks = []
    for item in node.value:
        if type(item) is not MappingNode:
            raise _FieldError(item, f"expected an {{at, size}} entry, found {_kind(item)}")
        at = size = None
        for key_node, value_node in item.value:
            key = _read_text(key_node)
            if key == "at" and at is None:
                at = _read_duration(value_node)
            elif key == "size" and size is None:
                size = _read_int(value_node)
                if size < 0:
                    raise _FieldError(value_node, f"negative chunk size {size}")
            else:
                raise _FieldError(key_node, f"unexpected key {key!r} in a chunks entry")
        if at is None or size is None:
            raise _FieldError(item, "a chunks entry needs both at and size")
        chunks.append(Chunk(at, size))
    return chunks


_Reader = Callable[[Node], object]
_READERS: dict[Kind, _Reader] = {
    Kind.TEXT: _read_text,
    Kind.LINE: _read_line,
    Kind.INT: _read_int,
    Kind.BOOL: _read_bool,
    Kind.BODY: _read_body,
    Kind.DURATION: _read_duration,
    Kind.STRING_LIST: _read_string_list,
    Kind.STRING_LISTS: _read_string_lists,
    Kind.HEADERS: _read_headers,
    Kind.CHUNKS: _read_chunks,
}


@lru_cache(maxsize=8)
def _section_readers(section: Section) -> tuple[dict[str, _Reader], frozenset[str], frozenset[str]]:
    """A section's readers by key, its required keys, and the keys whose empty value marks the
    every-key style."""
    readers = {f.name: _READERS[f.kind] for f in section.fields}
    marks_full = frozenset(f.name for f in section.fields if f.omit is Omit.EMPTY)
    return readers, section.required(), marks_full


def _read_extra(node: Node) -> object:
    """An unknown key's value as plain Python data, keeping which scalars were plain."""
    if type(node) is ScalarNode:
        if node.tag == _BINARY_TAG:
            return _decode_binary(node)
        if not node.style and resolves_to_non_string(node.value):
            return PlainText(node.value)
        return node.value
    if type(node) is SequenceNode:
        return [_read_extra(item) for item in node.value]
    out: dict[str, object] = {}
    for key_node, value_node in node.value:
        key = _read_text(key_node)
        if key in out:
            raise _FieldError(key_node, f"duplicate key {key!r}")
        if not key_node.style and resolves_to_non_string(key):
            key = PlainText(key)
        out[key] = _read_extra(value_node)
    return out


class _Loader(_YamlLoader):  # type: ignore[misc, valid-type]
    """The type-free loader, without path resolvers (none are registered) for speed."""

    def resolve(self, kind: type, value: object, implicit: object) -> str:
        if kind is ScalarNode:
            return _STR_TAG
        return "tag:yaml.org,2002:seq" if kind is SequenceNode else "tag:yaml.org,2002:map"

    def descend_resolver(self, current_node: object, current_index: object) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None


class _Conversion:
    """Nodes to a Cassette; remembers whether the file has the every-key shape."""

    def __init__(self) -> None:
        self.full_shape = False

    def section(self, node: Node, section: Section) -> Request | Response:
        if type(node) is not MappingNode:
            raise _FieldError(node, f"expected a mapping, found {_kind(node)}")
        readers, required, marks_full = _section_readers(section)
        target = section.model()
        seen = set()
        extra = target.extra
        for key_node, value_node in node.value:
            key = key_node.value if type(key_node) is ScalarNode else _read_text(key_node)
            if key in seen:
                raise _FieldError(key_node, f"duplicate key {key!r}")
            seen.add(key)
            reader = readers.get(key)
            try:
                if reader is None:
                    extra[key] = _read_extra(value_node)
                    continue
                value = reader(value_node)
            except _FieldError as e:
                raise e.under(key) from None
            setattr(target, key, value)
            if not value and key in marks_full:
                self.full_shape = True
        missing = required - seen
        if missing:
            names = ", ".join(sorted(missing))
            raise _FieldError(node, f"missing key{'s' if len(missing) > 1 else ''} {names}")
        return target

    def interaction(self, node: Node, index: int) -> Interaction:
        if type(node) is not MappingNode:
            raise _FieldError(node, f"an interaction must be a mapping, found {_kind(node)}")
        request_section, response_section = fields.REQUEST, fields.RESPONSE
        request: Request | Response | None = None
        response: Request | Response | None = None
        interaction_id = index  # a file without ids numbers them in order
        extra: dict[str, object] = {}
        seen = set()
        for key_node, value_node in node.value:
            key = _read_text(key_node)
            if key in seen:
                raise _FieldError(key_node, f"duplicate key {key!r}")
            seen.add(key)
            try:
                if key == request_section.key:
                    request = self.section(value_node, request_section)
                elif key == response_section.key:
                    response = self.section(value_node, response_section)
                elif key == "id":
                    interaction_id = _read_int(value_node)
                else:
                    extra[key] = _read_extra(value_node)
            except _FieldError as e:
                raise e.under(key) from None
        if request is None or response is None:
            raise _FieldError(node, f"missing key {'request' if request is None else 'response'}")
        return Interaction(request, response, interaction_id, extra)  # type: ignore[arg-type]


def _check_no_aliases(root: Node, text: bytes | str, path: str | None) -> None:
    """Refuse aliases: the composer shares an aliased node, so a node met twice is one. Walking
    the shared graph stops at the first repeat: an alias bomb costs its size, not its expansion."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        ident = id(node)
        if ident in seen:
            raise CassetteError(
                "YAML aliases (*name) are not allowed in a cassette", path, _alias_line(text)
            )
        seen.add(ident)
        if type(node) is MappingNode:
            for pair in node.value:
                stack.extend(pair)
        elif type(node) is SequenceNode:
            stack.extend(node.value)


def _alias_line(text: bytes | str) -> int | None:
    """The line of the first alias, from the event stream (error path only)."""
    try:
        loader = _YamlLoader(text)
    except yaml.YAMLError:
        return None
    try:
        while True:
            event = loader.get_event()
            if event is None:
                return None
            if isinstance(event, yaml.AliasEvent):
                return event.start_mark.line + 1
    except yaml.YAMLError:
        return None
    finally:
        loader.dispose()


def _compose(data: bytes | str, path: str | None) -> Node | None:
    loader = None
    try:
        loader = _Loader(data)  # the pure-Python reader checks the characters here
        return loader.get_single_node()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = e.problem or "syntax error"
        if e.context:
            problem = f"{problem} ({e.context})"
        raise CassetteError(
            f"not valid YAML: {problem}", path, mark.line + 1 if mark else None
        ) from None
    except yaml.YAMLError as e:
        line = None
        position = getattr(e, "position", None)
        if isinstance(position, int):
            line = data[:position].count(b"\n" if isinstance(data, bytes) else "\n") + 1
        reason = getattr(e, "reason", None) or str(e)
        raise CassetteError(f"not valid YAML: {reason}", path, line) from None
    except RecursionError:
        raise CassetteError("not valid YAML: nested too deeply", path) from None
    finally:
        if loader is not None:
            loader.dispose()


def _block_scalar_indent(node: ScalarNode, data: bytes | str) -> int:
    """The indentation of a literal or folded block (error-free files only): its indicator, else
    the leading spaces of its first non-empty line."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    lines = text.split("\n", node.end_mark.line + 1)[node.start_mark.line : node.end_mark.line + 1]
    digits = [c for c in lines[0][node.start_mark.column :].split("#")[0] if c.isdigit()]
    if digits:
        return int(digits[0])
    for line in lines[1:]:
        if line.strip(" \r"):
            return len(line) - len(line.lstrip(" "))
    return 0


def _detect_indent(root: MappingNode, data: bytes | str) -> int:
    """The indent width of a file, from where its first nested block starts: the dash of a
    top-level block list (column 0 in charm's compact layout, 4 in go-vcr's) or the keys of a
    top-level block mapping (column 2 or 4), the interactions first; 2 when nothing tells."""
    values = [value for key, value in root.value if key.value == "interactions"]
    values += [value for key, value in root.value if key.value != "interactions"]
    for node in values:
        if type(node) is ScalarNode:
            if node.style in ("|", ">"):
                return 4 if _block_scalar_indent(node, data) >= 4 else 2
        elif node.value and not node.flow_style:
            return 4 if node.start_mark.column >= 4 else 2
    return 2




def full_loads(data: bytes | str, path: str | None) -> Cassette:
    """loads() through PyYAML's nodes, for every file; before the chunks check."""
    if isinstance(data, bytes):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data[: e.start].count(b"\n") + 1
            message = f"not UTF-8 text (byte 0x{data[e.start]:02x})"
            raise CassetteError(message, path, line) from None
    root = _compose(data, path)
    if root is None:
        raise CassetteError("empty file, not a go-vcr cassette", path)
    _check_no_aliases(root, data, path)
    if type(root) is not MappingNode:
        raise CassetteError(
            f"not a go-vcr cassette: the document is {_kind(root)}, not a mapping",
            path,
            root.start_mark.line + 1,
        )
    version_node = interactions_node = None
    extra: dict[str, object] = {}
    conversion = _Conversion()
    try:
        for key_node, value_node in root.value:
            key = _read_text(key_node)
            if key == "version":
                version_node = value_node
            elif key == "interactions":
                interactions_node = value_node
            elif key in extra:
                raise _FieldError(key_node, f"duplicate key {key!r}")
            else:
                extra[key] = _read_extra(value_node)
        if version_node is None:
            raise _FieldError(root, "no version key: not a go-vcr cassette (version 2 expected)")
        if (
            type(version_node) is not ScalarNode
            or version_node.style
            or go_int(version_node.value) != 2
        ):
            shown = version_node.value if type(version_node) is ScalarNode else _kind(version_node)
            if type(version_node) is ScalarNode and version_node.style:
                shown = f"{version_node.style}{shown}{version_node.style}"
            raise _FieldError(
                version_node, f"unsupported cassette version {shown} (version 2 expected)"
            )
        if interactions_node is None:
            raise _FieldError(root, "no interactions key")
        if type(interactions_node) is SequenceNode:
            items = interactions_node.value
        elif type(interactions_node) is ScalarNode and _is_null(interactions_node):
            items = []
        else:
            raise _FieldError(
                interactions_node, f"interactions must be a list, found {_kind(interactions_node)}"
            )
        interactions = []
        for index, item in enumerate(items):
            try:
                interactions.append(conversion.interaction(item, index))
            except _FieldError as e:
                raise e.under(f"interactions[{index}]") from None
    except _FieldError as e:
        line = e.node.start_mark.line + 1 if e.node is not None else None
        message = f"{e.path}: {e.message}" if e.path else e.message
        raise CassetteError(message, path, line) from None
    except RecursionError:
        raise CassetteError("nested too deeply", path) from None
    style = Style(_detect_indent(root, data), omit_empty=not conversion.full_shape)
    return Cassette(interactions, style, extra)
