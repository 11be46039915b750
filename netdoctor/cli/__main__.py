"""``python -m netdoctor.cli`` runs the command line."""

from __future__ import annotations

from netdoctor.cli import main

if __name__ == "__main__":
    main()
