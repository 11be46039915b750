"""Integrations with the libraries around the frameworks, each imported only when used.

Checking the code people have (``netdoctor check``, ``netdoctor.check``):

    lightning_module.py  a LightningModule checked with its own data and training_step; no Lightning import
    hf_pretrained.py     a Hugging Face ``save_pretrained`` folder built offline with its own loss

The training monitor where people train (each imports its library at import time, so import
them by name: ``from netdoctor.integrations.lightning import NetdoctorCallback``):

    lightning.py         NetdoctorCallback for ``lightning.Trainer`` (and ``pytorch_lightning``)
    transformers.py      NetdoctorCallback for the Hugging Face ``transformers.Trainer``
    dashboards.py        TensorBoard ``SummaryWriter`` and wandb runs as ``log_to=``
    _findings.py         what both callbacks do with the findings that fired (loggers, on_error)

``import netdoctor`` never imports this package.
"""
