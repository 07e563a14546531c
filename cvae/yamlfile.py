"""The one strict YAML loader every spec and experiment file goes through."""

from __future__ import annotations

import codecs
import re
from pathlib import Path
from typing import Any

import yaml

from cvae.errors import ConfigError, short_repr

MAX_YAML_BYTES = 1_000_000
"""Largest YAML file read: a spec or an experiment is a few KB; a bigger file is refused before it is parsed."""


MAX_YAML_DEPTH = 32
"""Deepest nesting of mappings and lists in a YAML file."""


class Refused(yaml.MarkedYAMLError):
    """YAML that ``StrictLoader`` refuses though YAML allows it (an alias, a key given twice): not a syntax error."""


def line_of(mark: yaml.Mark) -> int:
    """The line of a YAML position as an editor counts it: PyYAML also breaks lines at U+2028, U+2029 and NEL,
    which are ordinary characters to an editor, so newlines are counted instead."""
    buffer = getattr(mark, "buffer", None)
    return buffer.count("\n", 0, mark.index) + 1 if isinstance(buffer, str) else mark.line + 1


class StrictLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader, stricter, for every YAML text the project reads (``load_yaml``, ``--set`` values):
    anchors and aliases are refused where they appear, so an alias bomb ("billion laughs") is refused at its first
    anchor, before anything is expanded; a key given twice in one mapping is refused with both lines (YAML
    would keep the last silently); merge keys (``<<``) are refused; nesting deeper than ``MAX_YAML_DEPTH`` is
    refused (no recursion error); a scalar Python cannot build (a 5000-digit integer, 2024-02-30) is refused with
    its line."""

    def scan_to_next_token(self) -> None:
        """PyYAML's, with YAML's rule for tabs: a tab after content on its line (`epochs: 3<TAB># comment`) is
        white space, as a space is; a tab in indentation stays an error (YAML forbids it there)."""
        while self.peek() == "\t" and self.buffer[self.buffer.rfind("\n", 0, self.pointer) + 1:self.pointer].strip():
            self.forward()
        super().scan_to_next_token()
        while self.peek() == "\t" and self.buffer[self.buffer.rfind("\n", 0, self.pointer) + 1:self.pointer].strip():
            self.forward()
            super().scan_to_next_token()

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise Refused(None, None, "YAML anchors and aliases (&name, *name) are not supported; write the values "
                          "out", event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise Refused(None, None, f"nested more than {MAX_YAML_DEPTH} levels deep", event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:  # int('9' * 5000), date(2024, 2, 30)
            raise Refused(None, None, f"cannot read {short_repr(node.value)}: {exc}", node.start_mark) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise Refused(None, None, "merge keys (<<) are not supported; write the keys out",
                                  key_node.start_mark)
                key = self.construct_object(key_node, deep=True)
                try:
                    seen = key in first
                except TypeError:  # unhashable: SafeLoader's own error says so, with the line
                    break
                line = line_of(key_node.start_mark)
                if seen:
                    lines = f"line {line}" if first[key] == line else f"lines {first[key]} and {line}"
                    raise Refused(None, None, f"key {short_repr(key)} is given twice ({lines}); keep one",
                                  key_node.start_mark)
                first[key] = line
        return super().construct_mapping(node, deep=deep)



def _yaml_12_scalars(loader: type[yaml.SafeLoader]) -> None:
    """Plain scalars as YAML 1.2 reads them, not PyYAML's YAML 1.1: only `true`/`false` are booleans (`yes`, `on`,
    `no`, `off` stay text, so they cannot pass for a number or a flag by accident), and `1e-3` is a number."""
    replaced = ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
    loader.yaml_implicit_resolvers = {first: [r for r in resolvers if r[0] not in replaced]
                                      for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                 list("tTfF"))
    loader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"),
                                 list("-+0123456789"))
    loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
        list("-+0123456789."))


_yaml_12_scalars(StrictLoader)

def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping (a spec, an experiment) with ``StrictLoader``: the one reader of every YAML file.

    A missing file, a folder, a file over ``MAX_YAML_BYTES``, binary or non-UTF-8 bytes, a YAML error, an empty or
    comment-only file, or anything but a mapping at the top is a one-line ConfigError naming the file and the line.
    A UTF-8 byte-order mark is accepted."""
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, not a YAML file")
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or type(exc).__name__}") from None
    if len(data) > MAX_YAML_BYTES:
        raise ConfigError(f"{path}: is {path.stat().st_size} bytes, larger than the {MAX_YAML_BYTES} a spec may be")
    text = _decode(path, data)
    loader = None
    try:
        loader = StrictLoader(text)  # its reader refuses control characters right away
        root = loader.get_single_node()  # yaml.load's steps, keeping the root node's position
        tree = None if root is None else loader.construct_document(root)
    except yaml.reader.ReaderError as exc:  # a control character: no mark, a position
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError(f"{path}: line {line}: character {chr(exc.character)!r} is not allowed in YAML "
                          "text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {line_of(mark)}" if mark is not None else "YAML"
        problem = getattr(exc, "problem", None) or str(exc)
        kind = "" if isinstance(exc, Refused) else "YAML syntax error: "
        raise ConfigError(f"{path}: {where}: {kind}{problem}") from None
    except RecursionError:  # deeper than the composer: only flow collections nested beyond any sense
        raise ConfigError(f"{path}: YAML: nested more than {MAX_YAML_DEPTH} levels deep") from None
    finally:
        if loader is not None:
            loader.dispose()
    if tree is None:
        raise ConfigError(f"{path}: spec is empty (no keys: only blank lines or comments); write at least "
                          "`extends: baseline.yaml`")
    if not isinstance(tree, dict):
        line = line_of(root.start_mark) if root is not None else 1
        raise ConfigError(f"{path}: line {line}: expected a mapping of sections at the top "
                          f"level, got {type(tree).__name__}")
    return tree


def _decode(path: Path, data: bytes) -> str:
    """UTF-8 text of a YAML file (a byte-order mark dropped); binary or other encodings are a ConfigError."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ConfigError(f"{path}: line 1: UTF-16 text (its byte-order mark); save the file as UTF-8")
    data = data.removeprefix(codecs.BOM_UTF8)
    if (nul := data.find(b"\0")) >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise ConfigError(f"{path}: line {line}: NUL byte: a binary file, not YAML text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}: line {line}: not UTF-8 text ({exc.reason} at byte {exc.start}); save the file "
                          "as UTF-8") from None
