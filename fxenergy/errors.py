"""Exceptions fxenergy raises on purpose.

Every error a user can cause derives from :class:`FxEnergyError`; its message is one line that names
what was wrong and how to fix it. The CLI prints that line and exits with code 2 (no traceback unless
``--debug``). Anything else escaping is a bug in fxenergy.
"""

from __future__ import annotations

__all__ = ["FxEnergyError", "UserInputError", "CaptureError", "AnalysisError"]


class FxEnergyError(Exception):
    """Base class: an error whose message is meant for the user, as one line."""


class UserInputError(FxEnergyError, ValueError):
    """A bad option value, unknown name, unreadable file or malformed input."""


class CaptureError(FxEnergyError):
    """No capture method could turn the model into a graph; the message lists what was tried."""


class AnalysisError(FxEnergyError):
    """A pass failed on a node; the message names the node."""
