"""Signals of records, for the layers above it.

``blood_gas_saved(sender=BloodGas, gas=...)``: a blood gas was recorded or changed
(``services.blood_gas_create`` and ``blood_gas_update``, after the write and its audit event).
The alerts connect to it in ``PatientsConfig.ready`` to check the P/F rule once the transaction
commits.
"""
from __future__ import annotations

from django.dispatch import Signal

blood_gas_saved = Signal()
