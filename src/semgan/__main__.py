"""``python -m semgan ...``: the ``semgan`` command (also what ``torchrun -m semgan`` runs on every rank)."""

from __future__ import annotations

import sys

from semgan.cli import main

if __name__ == "__main__":
    sys.exit(main())
