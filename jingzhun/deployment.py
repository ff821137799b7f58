"""A deployment's own sources and rules, from one YAML file, checked before any work.

sources.md lets a province add header aliases and whole registers (its own 不予识别 lists) through configuration,
and a rule is a SQL model plus its catalogue entry. A deployment file says both::

    sources:
      poverty_register:                  # a source of the contract: more header aliases for its columns
        aliases: {household_id: [农户编号]}
      public_employees:                  # a new source: its columns as the contract writes them
        title: 财政供养人员
        department: 财政局(编办)
        columns:
          - {name: id_number, aliases: [身份证号, 公民身份号码], kind: id, required: true}
          - {name: name, aliases: [姓名], kind: name}
          - {name: payroll_status, aliases: [供养状态], kind: vocab, required: true,
             vocabulary: {在职: 在职, 在岗: 在职, 退休: 退休, 离职: 离职}}
    rules: rules.yaml                    # a rule catalogue (models in rules/ beside it), added to the shipped one

Anything that cannot be used is refused with a message naming the file, the field and the value: an unknown
source, column, kind, key or rule field. :func:`install` adds what the file says to the contract, staging, the
warehouse's tables and the catalogue of this process: readers, the quality gate (its suites are built from the
contract), the engine and the reports then treat the new registers as their own.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import get_args


from jingzhun.catalogue import RULES, Catalogue, CatalogueError, read_catalogue
from jingzhun.contract import DEPARTMENTS, SOURCES, Column, Kind, Source
from jingzhun import yamlfile
from jingzhun.privacy import Refused

KINDS = get_args(Kind)
NAME = re.compile(r"[a-z][a-z0-9_]{1,40}")  # fullmatch: "$" lets a trailing newline through
ENVIRONMENT = "JINGZHUN_DEPLOYMENT"  # a worker's deployment file, when its runs are not given one
SHIPPED = dict(SOURCES)  # the contract as jingzhun ships it: what a deployment file is checked against


class DeploymentError(Refused):
    """A deployment file that cannot be used (names the file, the field and what is wrong)."""


@dataclass(frozen=True)
class Deployment:
    path: Path
    sources: dict[str, Source]          # new sources, and contract sources with more aliases
    departments: dict[str, str]
    catalogue: Catalogue | None


def read_deployment(path: str | Path) -> Deployment:
    """The deployment of a YAML file, checked against the contract."""
    path = Path(path)
    where = path.name
    try:
        data = yamlfile.parse(path.read_text(encoding="utf-8"), where) or {}
    except (OSError, UnicodeDecodeError) as exc:
        raise DeploymentError(f"{where}: cannot be read as YAML ({type(exc).__name__})") from None
    except yamlfile.YamlFileError as exc:
        raise DeploymentError(str(exc)) from None
    _only(data, {"sources", "rules"}, where)
    sources, departments = {}, {}
    for name, entry in (_mapping(data.get("sources") or {}, f"{where}: sources")).items():
        at = f"{where}: sources.{name}"
        if name in SHIPPED:
            sources[name] = _more_aliases(SHIPPED[name], _mapping(entry, at), at)
        else:
            sources[name], departments[name] = _new_source(str(name), _mapping(entry, at), at)
    catalogue = None
    if data.get("rules"):
        rules = path.parent / str(data["rules"])
        if not rules.is_file():
            raise DeploymentError(f"{where}: rules: no catalogue file {data['rules']!r} beside it")
        from jingzhun.engine import check_catalogue

        try:  # its rules may read the sources it adds, and nothing but what the engine registers
            catalogue = read_catalogue(rules, {**SHIPPED, **sources})
            check_catalogue(catalogue, {**SHIPPED, **sources})
        except CatalogueError as exc:
            raise DeploymentError(f"{where}: rules: {exc}") from None
    return Deployment(path.resolve(), sources, departments, catalogue)


def _only(entry: dict, allowed: set[str], at: str) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise DeploymentError(f"{at}: unknown key(s) {', '.join(map(str, unknown))} (allowed: {', '.join(sorted(allowed))})")


def _mapping(value, at: str) -> dict:
    if not isinstance(value, dict):
        raise DeploymentError(f"{at}: expected a mapping")
    return value


def _texts(value, at: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise DeploymentError(f"{at}: expected a list of header names")
    return tuple(v.strip() for v in value)


def _more_aliases(source: Source, entry: dict, at: str) -> Source:
    _only(entry, {"aliases"}, at)
    added = _mapping(entry.get("aliases") or {}, f"{at}.aliases")
    known = {c.name for c in source.columns}
    for column in added:
        if column not in known:
            raise DeploymentError(f"{at}.aliases: unknown column {column!r} of {source.name}")
    columns = tuple(replace(c, aliases=tuple(dict.fromkeys((*c.aliases, *_texts(added[c.name], f"{at}.aliases.{c.name}")))))
                    if c.name in added else c for c in source.columns)
    return replace(source, columns=columns)


def _new_source(name: str, entry: dict, at: str) -> tuple[Source, str]:
    _only(entry, {"title", "department", "columns"}, at)
    if not NAME.fullmatch(name):
        raise DeploymentError(f"{at}: a source's name is lower-case letters, digits and _ (2 to 41 characters)")
    if not isinstance(entry.get("title"), str) or not entry["title"].strip():
        raise DeploymentError(f"{at}.title: missing (the register's Chinese name)")
    raw = entry.get("columns")
    if not isinstance(raw, list) or not raw:
        raise DeploymentError(f"{at}.columns: expected a list of columns")
    columns = []
    for i, col in enumerate(raw):
        columns.append(_column(_mapping(col, f"{at}.columns[{i}]"), f"{at}.columns[{i}]"))
    names = [c.name for c in columns]
    if len(set(names)) != len(names):
        raise DeploymentError(f"{at}.columns: a column is named twice")
    ids = [c for c in columns if c.kind == "id"]
    if len(ids) != 1 or not ids[0].required:
        raise DeploymentError(f"{at}.columns: exactly one column of kind id, required (what the registers are matched on)")
    return Source(name, entry["title"].strip(), tuple(columns)), str(entry.get("department") or "")


def _column(entry: dict, at: str) -> Column:
    _only(entry, {"name", "aliases", "kind", "required", "vocabulary", "max_chars"}, at)
    name = entry.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name) or name.startswith("_") or "__" in name:
        raise DeploymentError(f"{at}.name: a column's name is lower-case letters, digits and _ (got {name!r})")
    kind = entry.get("kind", "text")
    if kind not in KINDS:
        raise DeploymentError(f"{at}.kind: unknown kind {kind!r} (one of {', '.join(KINDS)})")
    required = entry.get("required", False)
    if not isinstance(required, bool):
        raise DeploymentError(f"{at}.required: expected true or false")
    vocabulary = None
    if kind == "vocab":
        values = _mapping(entry.get("vocabulary"), f"{at}.vocabulary")
        if not values or not all(isinstance(k, str) and isinstance(v, str) for k, v in values.items()):
            raise DeploymentError(f"{at}.vocabulary: expected a mapping of codes as sent to canonical values")
        vocabulary = tuple(values.items())
    elif "vocabulary" in entry:
        raise DeploymentError(f"{at}.vocabulary: only a column of kind vocab has one")
    max_chars = entry.get("max_chars")
    if max_chars is not None and (not isinstance(max_chars, int) or max_chars <= 0):
        raise DeploymentError(f"{at}.max_chars: expected a positive whole number")
    return Column(name, _texts(entry.get("aliases"), f"{at}.aliases"), required, kind, None, max_chars, vocabulary)


_INSTALLED: list[Deployment] = []  # the deployment this process runs (at most one)
_BEFORE: dict = {}   # what install changed, as it was (uninstall restores it)


def install(deployment: Deployment) -> None:
    """Add the deployment to this process: its sources to the contract (with generic staging and a warehouse
    table each), its rules to the catalogue. The same file again is a no-op; a second, different file is refused
    (one deployment per process)."""
    if _INSTALLED:
        if _INSTALLED[0].path == deployment.path:
            return
        raise DeploymentError(f"{deployment.path.name}: this process already runs deployment "
                              f"{_INSTALLED[0].path.name}")
    from jingzhun import warehouse
    from jingzhun.staging import STAGING, generic_staging

    _BEFORE.update(sources=dict(SOURCES), departments=dict(DEPARTMENTS), staging=dict(STAGING), rules=dict(RULES))
    for name, source in deployment.sources.items():
        SOURCES[name] = source
        if name in deployment.departments:
            DEPARTMENTS[name] = deployment.departments[name]
        STAGING.setdefault(name, generic_staging(name))
        warehouse.add_source_table(source)
    if deployment.catalogue is not None:
        RULES.update(deployment.catalogue.rules)
    _INSTALLED.append(deployment)


def uninstall() -> None:
    """This process as it was before :func:`install` (tests run several deployments in one process)."""
    if not _INSTALLED:
        return
    from jingzhun import warehouse
    from jingzhun.staging import STAGING

    for mapping, saved in ((SOURCES, _BEFORE["sources"]), (DEPARTMENTS, _BEFORE["departments"]),
                           (STAGING, _BEFORE["staging"]), (RULES, _BEFORE["rules"])):
        mapping.clear()
        mapping.update(saved)
    warehouse.remove_source_tables()
    _INSTALLED.clear()


def install_file(path: str | Path | None = None) -> Deployment | None:
    """Read and install the deployment file given, else the one ``JINGZHUN_DEPLOYMENT`` names (none: nothing)."""
    path = path or os.environ.get(ENVIRONMENT)
    if not path:
        return None
    if _INSTALLED and _INSTALLED[0].path == Path(path).resolve():
        return _INSTALLED[0]
    deployment = read_deployment(path)
    install(deployment)
    return deployment


