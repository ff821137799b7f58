"""Prefect's entry point of the nightly run (``prefect.yaml``: ``flows/nightly.py:nightly``).

The flow and the steps it reads as a table of contents live in the package: :mod:`jingzhun.nightly`,
:mod:`jingzhun.steps`.
"""

from jingzhun.nightly import nightly

__all__ = ["nightly"]
