"""Integrations of the training monitor with the frameworks people train with.

    lightning.py     NetdoctorCallback for ``lightning.Trainer`` (and ``pytorch_lightning``)
    transformers.py  NetdoctorCallback for the Hugging Face ``transformers.Trainer``
    _findings.py     what both do with the findings that fired (loggers, on_error)

Each module imports its framework at import time, so this package imports none: use
``from netdoctor.integrations.lightning import NetdoctorCallback``. ``import netdoctor`` never
imports this package.
"""
