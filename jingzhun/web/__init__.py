"""The workbench (signoff.md, "The workbench and the offline path"): ``jingzhun serve``, a FastAPI application with
server-rendered Chinese pages for every role and the JSON API for scripts. :func:`create_app` builds it."""

from jingzhun.web.app import create_app

__all__ = ["create_app"]
