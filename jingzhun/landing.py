"""Where each source comes from tonight: a folder of the landing area (the default), or a database query.

A deployment lists its database sources in a YAML file (``--sources FILE``, the flows' ``sources_config``)::

    hukou:
      url: postgresql+psycopg://reader@10.0.0.5/gongan
      query: SELECT 公民身份号码, 姓名, 户号, 住址区划代码, 人员状态 FROM v_hukou_export

The query's column names are matched against the header aliases exactly as a file's header row is.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from jingzhun import yamlfile
from jingzhun.contract import SOURCES
from jingzhun.privacy import url_secret


class DatabaseSource(BaseModel):
    """One source read from a database: a SQLAlchemy URL and the query that returns the register."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    query: str

    @property
    def label(self) -> str:
        """How the run records it (the password, in the URL's user part or its query, left out)."""
        return url_secret(self.url)[0]


def load_database_sources(path: str | Path | None) -> dict[str, DatabaseSource]:
    """The database sources of a YAML file (source name -> url and query); unknown source names are refused."""
    if not path:
        return {}
    data = yamlfile.parse(Path(path).read_text(encoding="utf-8"), str(path)) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of source names to {{url, query}}")
    unknown = sorted(set(data) - set(SOURCES))
    if unknown:
        raise ValueError(f"{path}: unknown sources {unknown}; known: {', '.join(SOURCES)}")
    return {name: DatabaseSource.model_validate(spec) for name, spec in data.items()}
