"""Errors a user can cause. The CLI prints them as one line and exits 2."""

from __future__ import annotations


class NetdoctorError(Exception):
    """Base class: a problem the user can fix (bad file, bad data, bad config).

    ``str(error)`` is the one-line message shown to the user; it names what to do next.
    """


class ModelLoadError(NetdoctorError):
    """The model file is missing, fails to import, or defines no model."""


class NoModelError(ModelLoadError):
    """The file defines nothing netdoctor takes for a model (no ``build_model()``, ``model``, model class).

    An error for a file the user named; a file reached by a directory walk or a pattern is
    reported as "no model: skipped" instead (:mod:`netdoctor.modelfile.selection`).
    """


class DataError(NetdoctorError):
    """The data is unusable: wrong shape for the model, wrong type, unreadable file."""


class LossError(NetdoctorError):
    """The loss function raised or returned something that is not a scalar."""


class UnsupportedModelError(NetdoctorError):
    """The object is not a PyTorch or Keras 3 model netdoctor can check."""


class ConfigError(NetdoctorError):
    """Bad configuration (unknown key or rule, bad value)."""
