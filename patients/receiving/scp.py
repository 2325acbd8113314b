"""The DICOM receiver: a pynetdicom Storage SCP that files what ultrasound machines send.

``python manage.py lus_dicom_scp`` runs :func:`receiver_start`. It answers C-ECHO and accepts
C-STORE of ultrasound and secondary-capture images in every transfer syntax this server decodes.

* **Who may send.** A calling AE title that no receiving study allows (``Study.dicom_calling_aets``,
  read from the database at each association request) is rejected at association: A-ASSOCIATE-RJ,
  rejected-permanent, "calling AE title not recognised".
* **In what.** Every transfer syntax with an installed pydicom decoder (explicit and implicit
  little endian, the retired explicit big endian, deflated, JPEG baseline/extended/lossless,
  JPEG-LS, JPEG 2000, RLE). A big endian instance is stored little endian once de-identified
  (:func:`patients.imaging.core.stored.to_little_endian`).
* **What it files.** Each instance goes through :func:`patients.receiving.services.instance_receive`
  for the study that allows its sender: a clip of the exam its Study Instance UID names (checked,
  de-identified and scored by the ingest and scoring workers, as an upload), or the study's inbox.
* **What it refuses.** Other storage SOP classes (an SR, a presentation state) are negotiated so
  that the sender hears why: each gets the failure status 0x0122 (SOP class not supported) with an
  ErrorComment; a data set that is no image of its class 0xA900, one this server cannot read
  0xC000. Nothing of a refused instance is stored.

Each association runs in its own thread with its own database connection, closed when the handler
returns (the receiver holds no connection between instances).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection
from pydicom.dataset import Dataset
from pydicom.uid import AllTransferSyntaxes
from pynetdicom import AE, evt
from pynetdicom.presentation import AllStoragePresentationContexts
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from lusweb.errors import ServiceError
from patients.receiving import selectors
from patients.receiving.mapping import IMAGE_SOP_CLASSES, decodable
from patients.receiving.models import ReceivedVia
from patients.receiving.services import instance_receive

LOG = logging.getLogger(__name__)

SUCCESS = 0x0000
NOT_AUTHORIZED = 0x0124  # Refused: Not Authorized
SOP_CLASS_NOT_SUPPORTED = 0x0122  # Refused: SOP Class not supported
OUT_OF_RESOURCES = 0xA700  # Refused: Out of Resources
DATASET_MISMATCH = 0xA900  # Error: Data Set does not match SOP Class
CANNOT_UNDERSTAND = 0xC000  # Error: Cannot understand
PROCESSING_FAILURE = 0x0110

#: The failure status each refusal code of ``instance_receive`` answers with.
STATUS_OF_CODE = {
    "not_an_image": SOP_CLASS_NOT_SUPPORTED,
    "no_pixel_data": DATASET_MISMATCH,
    "bad_pixel_data": DATASET_MISMATCH,
    "not_dicom": CANNOT_UNDERSTAND,
    "bad_header": CANNOT_UNDERSTAND,
    "unsupported_transfer_syntax": CANNOT_UNDERSTAND,
    "too_large": OUT_OF_RESOURCES,
    "study_archived": NOT_AUTHORIZED,
}

#: Longer than any AE title a peer can send (16 characters): an allow-list that no one matches.
_NOBODY = "-no-sender-allowed-"


def _db_call(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on this thread's database connection and close it after (threads come and go);
    a connection inside a transaction (a caller's) stays open."""
    if connection.in_atomic_block:
        return fn()
    close_old_connections()
    try:
        return fn()
    finally:
        connection.close()


class ReceiverAE(AE):
    """An AE whose required calling AE titles are the studies' allow-lists, read at each request."""

    @property  # type: ignore[override]
    def require_calling_aet(self) -> list[str]:
        allowed = _db_call(selectors.calling_aets_allowed)
        return sorted(allowed) or [_NOBODY]

    @require_calling_aet.setter
    def require_calling_aet(self, ae_titles: list[str]) -> None:
        raise AttributeError("the receiver's calling AE titles come from each study's settings")


def _status(code: int, comment: str) -> Dataset:
    answer = Dataset()
    answer.Status = code
    answer.ErrorComment = comment[:64]  # LO: 64 characters
    return answer


def handle_echo(event: Any) -> int:
    return SUCCESS


def handle_store(event: Any) -> int | Dataset:
    """File one C-STORE instance; a failure status with an ErrorComment when it is refused."""
    aet = str(event.assoc.requestor.ae_title).strip()
    try:
        data = event.encoded_dataset(include_meta=True)
        return _db_call(lambda: _receive(aet, data))  # type: ignore[no-any-return]
    except Exception:  # any failure: the sender gets a failure status, the log the traceback
        LOG.exception("C-STORE from %s failed", aet)
        return _status(PROCESSING_FAILURE, "the receiver failed to store the instance; see its log")


def _receive(aet: str, data: bytes) -> int | Dataset:
    studies = selectors.studies_for_calling_aet(aet)
    if len(studies) != 1:
        words = "no study allows" if not studies else "several studies allow"
        return _status(NOT_AUTHORIZED, f"{words} calling AE title {aet}")
    try:
        got = instance_receive(study=studies[0], data=data, via=ReceivedVia.DIMSE, calling_aet=aet)
    except ServiceError as exc:
        LOG.info("C-STORE from %s refused (%s): %s", aet, exc.code, exc.message)
        return _status(STATUS_OF_CODE.get(exc.code, CANNOT_UNDERSTAND), exc.message)
    LOG.info("C-STORE from %s: %s %s", aet, got.kind,
             got.clip.pk if got.clip is not None else (got.inbox.pk if got.inbox is not None else ""))
    return SUCCESS


def receiver_ae(ae_title: str | None = None) -> ReceiverAE:
    """The receiver's AE with its presentation contexts: Verification; every image SOP class in
    every transfer syntax with an installed decoder; every other storage SOP class in the
    uncompressed syntaxes, only to answer it with a failure status that names the reason."""
    ae = ReceiverAE(ae_title=ae_title or settings.DICOM_AE_TITLE)
    ae.maximum_associations = int(settings.DICOM_MAX_ASSOCIATIONS)
    ae.add_supported_context(Verification)
    syntaxes = [str(uid) for uid in AllTransferSyntaxes if decodable(str(uid))]
    for context in AllStoragePresentationContexts:
        uid = str(context.abstract_syntax)
        if uid not in IMAGE_SOP_CLASSES:
            ae.add_supported_context(uid, context.transfer_syntax)
    for uid in IMAGE_SOP_CLASSES:  # the retired ultrasound classes too (not in pynetdicom's list)
        ae.add_supported_context(uid, syntaxes)
    return ae


def receiver_start(*, host: str, port: int, ae_title: str | None = None) -> ThreadedAssociationServer:
    """Start listening (in background threads); the caller stops it with ``server.shutdown()``."""
    ae = receiver_ae(ae_title)
    handlers: list[Any] = [(evt.EVT_C_ECHO, handle_echo), (evt.EVT_C_STORE, handle_store)]
    server = ae.start_server((host, port), block=False, evt_handlers=handlers)
    assert server is not None
    LOG.info("DICOM receiver %s listening on %s:%s", ae.ae_title, host, port)
    return server
