"""The installed netdoctor version (kept in step with ``version`` in pyproject.toml)."""

__version__ = "0.1.0"
