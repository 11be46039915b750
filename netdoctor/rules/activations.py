"""Rules of this category (see netdoctor/rules/__init__.py)."""

from __future__ import annotations
