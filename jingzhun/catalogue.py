"""The rule catalogue: one entry per rule (code, Chinese title, grain, direction, sources and optional columns it
needs, what its evidence says), read from ``transforms/rules.yaml`` beside each rule's SQL model
``transforms/rules/<code>.sql``. Reviews, marts, "not evaluated" and the engine derive from it.

A catalogue is checked when it is loaded, against the contract: an unknown source, column, grain or direction,
an evidence field naming no column, or a rule without its model is refused with a message naming it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal


from jingzhun import yamlfile
from jingzhun.contract import SOURCES, Source
from jingzhun.privacy import SafeError

Grain = Literal["household", "person", "hukou_household"]
GRAINS: dict[str, str] = {"household": "one flag per register household", "person": "one flag per (household, person)",
                          "hukou_household": "one flag per public-security household not on the register"}
GRAIN_KEYS: dict[str, tuple[str, ...]] = {"household": ("household_id",), "person": ("household_id", "id_number"),
                                          "hukou_household": ("hukou_household_id",)}
DIRECTIONS = ("remove", "add", "revert", "refer", "exit", "review")
POSTED_DIRECTIONS = ("add", "remove", "exit", "revert")  # a confirmed change of the register: posted (公示)
CATALOGUE = Path(__file__).resolve().parents[1] / "transforms" / "rules.yaml"
CODE = re.compile(r"[A-Z][A-Z0-9_]{0,62}")   # a rule code: it names the engine's tables and is written into SQL
NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")   # an evidence key or part: written into SQL and into model file names


class CatalogueError(SafeError):
    """A rule catalogue that cannot be used (names the rule and the field)."""


@dataclass(frozen=True)
class EvidencePart:
    """Records of one source behind a rule's flags: JSON fields (key -> column of the model) and a sentence."""

    source: str
    fields: dict[str, str]
    sentence: str
    part: str = ""          # "" for the rule's own model; else its model is <code>.<part>.sql


@dataclass(frozen=True)
class Rule:
    """A rule of the catalogue: what reviews, marts and "not evaluated" read of it."""

    code: str
    title: str                              # the Chinese title stewards read
    grain: Grain                            # what one of its flags is about
    direction: str
    needs: tuple[str, ...]                  # sources it reads
    columns: tuple[tuple[str, str], ...]    # optional (source, column) pairs it reads
    evidence: tuple[EvidencePart, ...] = ()
    folder: Path = field(default=CATALOGUE.parent / "rules", compare=False)
    public_reason: str = ""                 # the 公示's 事由, in words a villager understands (posted directions)

    def model_path(self, part: EvidencePart) -> Path:
        return self.folder / (f"{self.code}.{part.part}.sql" if part.part else f"{self.code}.sql")


@dataclass(frozen=True)
class Catalogue:
    rules: dict[str, Rule]



def _rule(code: str, entry: dict, folder: Path, where: str, sources: Mapping[str, Source]) -> Rule:
    def need(key: str):
        if key not in entry:
            raise CatalogueError(f"{where}: rule {code}: missing field {key!r}")
        return entry[key]

    if not CODE.fullmatch(code):
        raise CatalogueError(f"{where}: a rule code is capital letters, digits and _ from a letter, at most 63 "
                             f"(it names tables and is written into SQL): {code[:63]!r} is not")
    unknown = set(entry) - {"title", "grain", "direction", "needs", "columns", "evidence", "public_reason"}
    if unknown:
        raise CatalogueError(f"{where}: rule {code}: unknown field(s) {', '.join(sorted(unknown))}")
    grain, direction = need("grain"), need("direction")
    if grain not in GRAINS:
        raise CatalogueError(f"{where}: rule {code}: unknown grain {grain!r} (one of {', '.join(GRAINS)})")
    if direction not in DIRECTIONS:
        raise CatalogueError(f"{where}: rule {code}: unknown direction {direction!r} (one of {', '.join(DIRECTIONS)})")
    needs = tuple(dict.fromkeys(need("needs")))
    for s in needs:
        if s not in sources:
            raise CatalogueError(f"{where}: rule {code}: unknown source {s!r} in needs")
    columns = []
    for text in entry.get("columns") or ():
        source, _, column = str(text).partition(".")
        if source not in sources or column not in {c.name for c in sources[source].columns}:
            raise CatalogueError(f"{where}: rule {code}: unknown column {text!r} in columns")
        columns.append((source, column))
    parts = []
    for i, p in enumerate(need("evidence")):
        bad = set(p) - {"source", "fields", "sentence", "part"}
        if bad or not {"source", "fields", "sentence"} <= set(p):
            raise CatalogueError(f"{where}: rule {code}: evidence {i + 1} needs source, fields and sentence"
                                 + (f" (unknown: {', '.join(sorted(bad))})" if bad else ""))
        if not isinstance(p["fields"], dict):
            raise CatalogueError(f"{where}: rule {code}: evidence {i + 1}: fields is a mapping of keys to columns")
        if p["source"] not in sources:
            raise CatalogueError(f"{where}: rule {code}: unknown source {p['source']!r} in evidence")
        for kind, name in [*(("evidence key", k) for k in p["fields"]), ("evidence part", p.get("part") or "x")]:
            if not NAME.fullmatch(str(name)):
                raise CatalogueError(f"{where}: rule {code}: {kind} {str(name)[:63]!r} is not small letters, digits "
                                     f"and _ from a letter, at most 63 (it is written into SQL)")
        parts.append(EvidencePart(p["source"], {str(k): str(v) for k, v in p["fields"].items()}, str(p["sentence"]),
                                  str(p.get("part", ""))))
    rule = Rule(code, str(need("title")), grain, direction, needs, tuple(columns), tuple(parts), folder,
                str(entry.get("public_reason") or "").strip())
    for part in rule.evidence:
        if not rule.model_path(part).is_file():
            raise CatalogueError(f"{where}: rule {code}: its model {rule.model_path(part).name} is missing")
    return rule


def read_catalogue(path: Path, sources: Mapping[str, Source] = SOURCES, aliases: bool = False) -> Catalogue:
    """The catalogue of a YAML file (rules under ``rules:``), checked against ``sources`` (the contract; a
    deployment's sources added when its own catalogue is read); models in ``rules/`` beside it. Only the shipped
    catalogue is read with ``aliases`` (yamlfile: a deployment's YAML has no anchors)."""
    try:
        data = yamlfile.parse(path.read_text(encoding="utf-8"), path.name, aliases=aliases) or {}
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogueError(f"{path.name}: cannot be read as YAML ({type(exc).__name__})") from None
    except yamlfile.YamlFileError as exc:
        raise CatalogueError(str(exc)) from None
    if not isinstance(data, dict):
        raise CatalogueError(f"{path.name}: no 'rules:' mapping")
    rules = data.get("rules")
    if not isinstance(rules, dict):
        raise CatalogueError(f"{path.name}: no 'rules:' mapping")
    return Catalogue({str(code): _rule(str(code), entry or {}, path.parent / "rules", path.name, sources)
                      for code, entry in rules.items()})


@lru_cache(maxsize=1)
def load_catalogue() -> Catalogue:
    """The catalogue shipped with jingzhun."""
    return read_catalogue(CATALOGUE, aliases=True)  # reviewed with the code; its anchors are its own


RULES: dict[str, Rule] = dict(load_catalogue().rules)  # this process's rules: the shipped ones and a deployment's


def current() -> Catalogue:
    """The catalogue this process runs: the shipped rules and those a deployment added (deployment.py)."""
    return Catalogue(RULES)
