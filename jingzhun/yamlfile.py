"""The one reader of YAML that a deployment supplies: the policy (``--config``), the database sources
(``--sources-config``), a deployment and its rule catalogue (``--deployment``, ``rules preview --rules``), a
pack's cases.

YAML's anchors and aliases let a file of under 1 KB stand for billions of values (a "billion laughs": nine
lists of nine aliases of the list before); read by ``yaml.safe_load``, such a deployment file ended in a
MemoryError after 26 s. Configuration needs no anchors, so a file using one is refused at the anchor, before
anything is built, naming the file and the line. jingzhun's own catalogue (``transforms/rules.yaml``, shipped
and reviewed with the code) keeps its anchors: only it is read with ``aliases=True``.
"""

from __future__ import annotations

from typing import Any

import yaml

from jingzhun.privacy import Refused


class YamlFileError(Refused):
    """A YAML file that cannot be used: not YAML, or using an anchor or alias; names the file and line, never
    the file's text."""


class _AliasFound(Exception):
    def __init__(self, line: int):
        self.line = line


class NoAliasLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that stops at the first anchor (``&name``) or alias (``*name``), before the
    document is composed further."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _AliasFound(event.start_mark.line + 1)
        return super().compose_node(parent, index)


# A configuration is a page or two; a pack's catalogue a few hundred lines. Beyond this, a file is not one (a 34 MB
# policy of 2 million keys took 157 s and 3.7 GB before it was refused).
MAX_CHARS = 4 << 20


def parse(text: str, name: str, aliases: bool = False) -> Any:
    """The data of a YAML document; :class:`YamlFileError` naming ``name`` (the file) and the line when it is
    not YAML or (unless ``aliases``) uses an anchor or alias, or when it is far longer than a configuration."""
    if len(text) > MAX_CHARS:
        raise YamlFileError(f"{name}: 文件过大,不是配置文件 (refused: {len(text):,} characters, more than the "
                            f"{MAX_CHARS:,} a configuration file may hold)")
    try:
        return yaml.load(text, Loader=yaml.SafeLoader if aliases else NoAliasLoader)  # noqa: S506 - safe loaders
    except _AliasFound as found:
        raise YamlFileError(f"{name}: 第{found.line}行使用了 YAML 锚点或别名(& 或 *),配置文件中不允许,请逐项写出 "
                            f"(line {found.line}: a YAML anchor or alias (& or *) is not allowed in a configuration "
                            f"file; write each value out)") from None
    except RecursionError:  # a few hundred nested brackets in under 1 KB
        raise YamlFileError(f"{name}: 嵌套层数过深,不是可用的配置 (nested too deeply to be a configuration)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        at = f"第{mark.line + 1}行" if mark else ""
        raise YamlFileError(f"{name}: {at}不是有效的 YAML (cannot be read as YAML"
                            f"{f' at line {mark.line + 1}' if mark else ''}: {type(exc).__name__})") from None
