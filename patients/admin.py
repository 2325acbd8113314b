"""The app's admin entry point: Django's admin autodiscovery imports this module, which imports
each capability's admin module (they register their models)."""
from __future__ import annotations

from patients.audit import admin as audit_admin
from patients.imaging import admin as imaging_admin
from patients.readings import admin as readings_admin
from patients.records import admin as records_admin
from patients.studies import admin as studies_admin

__all__ = ["audit_admin", "imaging_admin", "readings_admin", "records_admin", "studies_admin"]
