"""Receiving DICOM from the ward: the C-STORE receiver, DICOMweb (STOW-RS, QIDO-RS) and the inbox."""
