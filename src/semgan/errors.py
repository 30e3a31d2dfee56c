"""User-facing errors.

Anything a user can cause (a bad path, a corrupt image, a label out of range, a wrong config key) raises
``SemGANError`` with a message that names the bad value and what was expected. The CLI prints these
without a traceback and exits non-zero; every other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class SemGANError(Exception):
    """An error caused by user input, reported to the user as plain text."""
