"""Prefect's entry point of an official's reconciliation (``prefect.yaml``: ``flows/reconcile.py:reconcile``).

The flow lives in the package: :mod:`jingzhun.reconcile`.
"""

from jingzhun.reconcile import reconcile

__all__ = ["reconcile"]
