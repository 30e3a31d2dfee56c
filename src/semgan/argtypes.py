"""Argument types shared by the commands: counts that argparse checks, so a bad one fails before any work."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def count(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer of at least ``minimum``; argparse names the option when it fails."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    parse.__name__ = "count"  # what argparse prints for an unparseable value
    return parse


POSITIVE = count(1)
NON_NEGATIVE = count(0)
