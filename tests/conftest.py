"""Shared test settings: rule crashes fail tests instead of becoming 'skipped'."""

from __future__ import annotations

import os

os.environ.setdefault("NETDOCTOR_STRICT", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
