"""Exam reports for the chart: a one-page PDF, a DICOM Structured Report (TID 1500) and FHIR R4."""
