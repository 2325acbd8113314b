"""De-identification of uploaded clips: pseudonyms, DICOM headers, burned-in text.

Pure Python (numpy, scipy, pydicom): no Django import, so it is unit-tested on its own and the
ingest service only passes the study's secret in.

* :func:`pseudonym` / :func:`remap_uid`: HMAC-SHA256 of the study's secret. Stable within a
  study, different across studies, not reversible without the secret.
* :func:`redact_frames`: zero everything outside the sector (found by
  :func:`patients.imaging.core.sector.find_sector` with its ``REDACTION`` configuration, which may
  keep a little of the frame around the image but never cuts into it).
* :func:`deidentify_dataset`: the DICOM PS3.15 Annex E Basic Application Level Confidentiality
  Profile, with the Clean Pixel Data option (burned-in text redacted) - see the docstring.
"""
from __future__ import annotations

import hashlib
import hmac
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from patients.imaging.core.iod import conform_us
from patients.imaging.core.sector import Sector
from patients.imaging.core.stored import STORED_SYNTAX, file_bytes, reencode_grey, to_little_endian

__all__ = ["DEID_CODES", "DEID_METHOD", "STORED_SYNTAX", "DeidResult", "deidentify_dataset", "dicom_from_frames",
           "pseudonym", "redact_frames", "remap_uid"]

#: Values of (0012,0063) De-identification Method (LO: at most 64 characters each).
DEID_METHOD = (
    "LUSWeb PS3.15 E.1 Basic Application Confidentiality Profile",
    "Clean Pixel Data: burned-in text outside the sector redacted",
    "UIDs remapped per study (HMAC-SHA256, 2.25 root)",
    "Dates and times removed",
)
#: The frame rate written for a multi-frame video or GIF that states none: the rate LUSWeb's
#: viewer plays such a clip at (``patients.imaging.selectors.DEFAULT_VIEWER_FPS``).
NOMINAL_FPS = 20.0
#: CID 7050 codes: Basic Application Confidentiality Profile, Clean Pixel Data Option.
DEID_CODES = (("113100", "Basic Application Confidentiality Profile"), ("113101", "Clean Pixel Data Option"))


# --- pseudonyms and UIDs --------------------------------------------------------------------------


def _mac(secret: str, message: str) -> bytes:
    if not secret:
        raise ValueError("a study secret is required")
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()


def pseudonym(secret: str, patient_id: int | str, length: int = 16) -> str:
    """The patient's export pseudonym in a study: HMAC-SHA256(secret, id), ``length`` hex digits."""
    return _mac(secret, f"patient:{patient_id}").hex()[:length]


def remap_uid(secret: str, uid: str) -> str:
    """A deterministic replacement UID ``2.25.<128-bit integer>`` (at most 44 characters)."""
    return "2.25." + str(int.from_bytes(_mac(secret, f"uid:{uid.strip()}")[:16], "big"))


# --- redaction ----------------------------------------------------------------------------------


def redact_frames(frames: np.ndarray, mask: np.ndarray, fill: int = 0) -> np.ndarray:
    """A copy of ``frames`` ([T, H, W] or [T, H, W, C]) with every pixel outside ``mask`` set to ``fill``."""
    out = np.array(frames, copy=True)
    out[:, ~mask] = fill
    return out


# --- DICOM ----------------------------------------------------------------------------------------

def _keywords(text: str) -> frozenset[str]:
    return frozenset(text.split())


# PS3.15 Table E.1-1 (Basic Profile) actions by keyword: X remove, Z empty, D dummy, U remap UID.
# The VR rules in _clean_element catch what is not listed (any name, date, time, UID or
# free text), so an attribute missing from this table is still cleaned. Where the table gives
# "X/Z" or "X/D" (remove unless the IOD needs it), the attribute is removed here and
# patients.imaging.core.iod.conform_us puts back, empty, the Type 2 ones the US IODs require.
_REMOVE = _keywords("""
AcquisitionComments AcquisitionContextSequence AcquisitionProtocolDescription ActualHumanPerformersSequence
AdditionalPatientHistory AdmissionID AdmittingDiagnosesCodeSequence AdmittingDiagnosesDescription Allergies Arbitrary
AuthorObserverSequence BranchOfService CommentsOnThePerformedProcedureStep ConfidentialityConstraintOnPatientDataDescription
ContentCreatorName ContentCreatorIdentificationCodeSequence ContributionDescription CountryOfResidence
CurrentPatientLocation CurveData CustodialOrganizationSequence DataSetTrailingPadding DerivationDescription
DeviceSerialNumber DeviceUID DigitalSignaturesSequence DischargeDiagnosisDescription DistributionAddress DistributionName
FrameComments GraphicAnnotationSequence HumanPerformerName HumanPerformerOrganization IconImageSequence
IdentifyingComments ImageComments ImagePresentationComments ImagingServiceRequestComments Impressions
InstitutionAddress InstitutionCodeSequence InstitutionName InstitutionalDepartmentName InsurancePlanIdentification
IntendedRecipientsOfResultsIdentificationSequence InterpretationApproverSequence InterpretationAuthor
InterpretationDiagnosisDescription InterpretationIDIssuer InterpretationRecorder InterpretationText InterpretationTranscriber
IssuerOfAdmissionID IssuerOfPatientID IssuerOfServiceEpisodeID MedicalAlerts MedicalRecordLocator MilitaryRank
ModifiedAttributesSequence ModifyingDeviceID ModifyingDeviceManufacturer NameOfPhysiciansReadingStudy
NamesOfIntendedRecipientsOfResults Occupation OperatorIdentificationSequence OperatorsName OriginalAttributesSequence
OrderCallbackPhoneNumber OrderEnteredBy OrderEntererLocation OtherPatientIDs OtherPatientIDsSequence OtherPatientNames
OverlayComments OverlayData ParticipantSequence PatientAddress PatientAge PatientBirthName PatientBirthTime
PatientComments PatientInsurancePlanCodeSequence PatientMotherBirthName PatientPrimaryLanguageCodeSequence
PatientPrimaryLanguageModifierCodeSequence PatientReligiousPreference PatientSize PatientState PatientTelephoneNumbers
PatientTransportArrangements PatientWeight PatientSexNeutered PatientSpeciesDescription PatientBreedDescription
PerformedLocation PerformedProcedureStepDescription PerformedProcedureStepID PerformingPhysicianIdentificationSequence
PerformingPhysicianName PersonAddress PersonIdentificationCodeSequence PersonName PersonTelephoneNumbers
PhysicianApprovingInterpretation PhysiciansOfRecord PhysiciansOfRecordIdentificationSequence
PhysiciansReadingStudyIdentificationSequence PlateID PreMedication ProtocolName ReasonForStudy ReasonForTheImagingServiceRequest
ReasonForTheRequestedProcedure ReferencedDigitalSignatureSequence ReferencedPatientAliasSequence ReferencedPatientSequence
ReferencedSOPInstanceMACSequence ReferencedStudySequence ReferringPhysicianAddress ReferringPhysicianIdentificationSequence
ReferringPhysicianTelephoneNumbers RegionOfResidence RequestAttributesSequence RequestedContrastAgent
RequestedProcedureComments RequestedProcedureID RequestedProcedureLocation RequestingPhysician RequestingService
ResponsibleOrganization ResponsiblePerson ResultsComments ResultsDistributionListSequence ResultsIDIssuer
ScheduledPatientInstitutionResidence ScheduledPerformingPhysicianIdentificationSequence ScheduledPerformingPhysicianName
ScheduledProcedureStepDescription ScheduledProcedureStepID ScheduledProcedureStepLocation ServiceEpisodeDescription
ServiceEpisodeID SpecialNeeds StationName StudyComments StudyDescription SeriesDescription TextComments TextString
TopicAuthor TopicKeywords TopicSubject TopicTitle VerifyingObserverIdentificationCodeSequence VerifyingObserverName
VerifyingObserverSequence VerifyingOrganization VisitComments EthnicGroup SmokingStatus PregnancyStatus
LastMenstrualDate AdmittingDate AdmittingTime DischargeDate DischargeTime
""")
# Z (empty): the Type 2 attributes of the General Study and Patient modules (PS3.3 C.7.2.1,
# C.7.1.1) and the General Image's Type 2C Content Date/Time (C.7.6.1). Accession Number is "Z" in
# Table E.1-1, not "X": removing it breaks the General Study module (dciodvfy: "Missing attribute
# Type 2 Required Element=<AccessionNumber>"). Study ID stays empty, not a dummy: the exam's SR
# (patients.reports.sr) shares the study and writes it empty, and a study's attributes agree.
_EMPTY = _keywords("""
PatientName PatientID PatientBirthDate PatientSex ReferringPhysicianName StudyID StudyDate StudyTime ContentDate ContentTime
ContrastBolusAgent AccessionNumber
""")
# UIDs that name standards, not instances: never remapped.
_KEEP_UIDS = _keywords("""
SOPClassUID MediaStorageSOPClassUID TransferSyntaxUID ImplementationClassUID ReferencedSOPClassUID
ReferencedSOPClassUIDInFile CodingSchemeUID ContextGroupExtensionCreatorUID MappingResourceUID
PrivateInformationCreatorUID RelatedGeneralSOPClassUID OriginalSpecializedSOPClassUID
""")
_FREE_TEXT_VRS = frozenset({"LT", "ST", "UT"})
_DATE_VRS = frozenset({"DA", "DT", "TM"})
# Free text that describes the acquisition, not the patient: kept.
_KEEP_TEXT = frozenset({"DeidentificationMethod"})


def _clean_element(ds: Any, elem: Any, uid_map: Callable[[str], str]) -> None:
    from pydicom.multival import MultiValue  # lazy: pydicom only for DICOM uploads

    keyword = elem.keyword or ""
    tag = elem.tag
    if tag.is_private or 0x6000 <= tag.group <= 0x60FF or tag.group in (0x5000, 0x5002):
        del ds[tag]  # private data, overlays (may hold burned-in text), curves
        return
    if keyword in _REMOVE:
        del ds[tag]
        return
    if elem.VR == "SQ":
        for item in elem.value or []:
            _clean_dataset(item, uid_map)
        return
    if keyword in _EMPTY or elem.VR == "PN":
        elem.value = ""
        return
    if elem.VR in _DATE_VRS:
        # Every other date and time is removed, not emptied: Table E.1-1 gives them "X" or "X/D"
        # / "X/Z" (e.g. Acquisition DateTime, Series Date), and none is Type 2 in the US IODs. An
        # emptied one can be invalid where removal is not: the US Image module's Acquisition
        # DateTime is Type 1C (PS3.3 C.8.5.6), and a Type 1C attribute is never present empty
        # (PS3.5 7.4.3; dciodvfy: "Attribute present but empty ... Type 1C").
        del ds[tag]
        return
    if elem.VR == "UI" and keyword not in _KEEP_UIDS and elem.value:
        values = list(elem.value) if isinstance(elem.value, (list, tuple, MultiValue)) else [elem.value]
        mapped = [uid_map(str(v)) for v in values]
        elem.value = mapped if len(mapped) > 1 else mapped[0]
        return
    if elem.VR in _FREE_TEXT_VRS and keyword not in _KEEP_TEXT:
        del ds[tag]


def _clean_dataset(ds: Any, uid_map: Callable[[str], str]) -> None:
    for elem in list(ds):
        _clean_element(ds, elem, uid_map)


@dataclass(frozen=True)
class DeidResult:
    """The de-identified DICOM (bytes), its remapped UIDs and what happened to its pixels."""

    data: bytes
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    pixels: str  # "redacted-native" | "redacted-reencoded" | "unchanged"


def _redact_native(ds: Any, mask: np.ndarray) -> bool:
    """Redact uncompressed pixel data in its own photometric interpretation; False if unsupported."""
    from pydicom.pixels import apply_color_lut, get_decoder  # lazy: pydicom only for DICOM uploads

    pi = str(ds.get("PhotometricInterpretation", ""))
    if pi not in {"MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "PALETTE COLOR"}:
        return False
    # as_rgb=False: the samples as stored (YBR stays YBR, palette indices stay indices).
    arr, _meta = get_decoder(ds.file_meta.TransferSyntaxUID).as_array(ds, as_rgb=False)  # type: ignore[arg-type]
    frames = arr if int(ds.get("NumberOfFrames", 1) or 1) > 1 else arr[None]
    if frames.shape[1:3] != mask.shape:
        return False
    bits = int(ds.get("BitsStored", 8))
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    fill: Any
    if pi == "MONOCHROME2":
        fill = -(2 ** (bits - 1)) if signed else 0
    elif pi == "MONOCHROME1":
        fill = 2 ** (bits - 1) - 1 if signed else 2**bits - 1
    elif pi == "RGB":
        fill = 0
    elif pi == "YBR_FULL":
        fill = np.array([0, 2 ** (bits - 1), 2 ** (bits - 1)], dtype=frames.dtype)
    else:  # palette: the index of the darkest entry
        desc = ds.RedPaletteColorLookupTableDescriptor
        count, first = int(desc[0]) or 65536, int(desc[1])
        lut = apply_color_lut(np.arange(first, first + count, dtype=frames.dtype), ds).astype(np.float64)
        fill = first + int(np.argmin(lut @ np.array([0.299, 0.587, 0.114])))
    if not frames.flags.writeable:
        frames = frames.copy()
    frames[:, ~mask] = fill  # in place: the decoded array is this function's own
    little = frames.astype(frames.dtype.newbyteorder("<"), copy=False)
    ds["PixelData"].value = b""  # the old pixel data goes before the new is built (the element keeps its VR)
    ds.PixelData = np.ascontiguousarray(little).tobytes()
    if "PlanarConfiguration" in ds:
        ds.PlanarConfiguration = 0  # the decoder returns interleaved samples
    return True


def _trim_native_excess(ds: Any) -> None:
    """Drop bytes an uncompressed Pixel Data holds beyond what its header describes (the reader
    refuses a whole frame of them, and notes less): nothing unseen is stored."""
    from patients.imaging.core.reader.dicom_layout import native_pixel_bytes  # lazy: pydicom only for DICOM uploads

    expected = native_pixel_bytes(ds)
    if expected is not None and len(ds.PixelData) > expected + expected % 2:
        ds.PixelData = ds.PixelData[: expected] + b"\x00" * (expected % 2)


def _stamp(ds: Any, redacted: bool) -> None:
    from pydicom.dataset import Dataset  # lazy: pydicom only for DICOM uploads

    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = list(DEID_METHOD) if redacted else [m for m in DEID_METHOD if "Pixel" not in m]
    codes = DEID_CODES if redacted else DEID_CODES[:1]
    items = []
    for value, meaning in codes:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
        items.append(item)
    ds.DeidentificationMethodCodeSequence = items
    ds.LongitudinalTemporalInformationModified = "REMOVED"
    if redacted:
        ds.BurnedInAnnotation = "NO"


def deidentify_dataset(raw: bytes, *, secret: str, grey_frames: np.ndarray, sector: Sector,
                       patient_pseudonym: str, zone: str = "") -> DeidResult:
    """De-identify one DICOM file (bytes) for a study.

    Header (PS3.15 E.1 Basic Profile): private and overlay/curve groups removed; names,
    addresses, IDs, institution, physicians, operators, device serial, free-text comments and
    descriptions removed or emptied; every DA/DT/TM value removed (dates are not shifted: the
    platform keeps the exam time itself); every instance UID remapped with :func:`remap_uid`
    (file meta included); PatientName and PatientID set to the study pseudonym;
    PatientIdentityRemoved=YES, DeidentificationMethod and its code sequence added. Then the US
    IODs' Type 2 attributes are completed and Image Laterality set from the lung ``zone``
    (:func:`patients.imaging.core.iod.conform_us`), so the copy validates (dciodvfy).

    Pixels (Clean Pixel Data option): uncompressed MONOCHROME, RGB, YBR_FULL and PALETTE COLOR
    data is redacted outside ``sector`` in its own encoding (stored uncompressed, the size of
    the upload); anything else (JPEG and other compressed syntaxes, subsampled YBR) is replaced
    by the redacted grey frames as 8-bit MONOCHROME2, JPEG-LS lossless (``STORED_SYNTAX``;
    ``LossyImageCompression`` keeps saying "01" when the source was lossy). Pixel data that
    needs no redaction (no sector found) is kept as it came, in its own codec.
    """
    # lazy: pydicom only for DICOM uploads (pseudonyms and redaction need none)
    import pydicom
    from pydicom.uid import UID, ExplicitVRLittleEndian

    ds = pydicom.dcmread(io.BytesIO(raw), force=True)
    to_little_endian(ds)  # a big endian upload is de-identified and stored as explicit VR little endian
    tsyntax = UID(str(ds.file_meta.get("TransferSyntaxUID") or ExplicitVRLittleEndian))
    cache: dict[str, str] = {}

    def uid_map(uid: str) -> str:
        if uid not in cache:
            cache[uid] = remap_uid(secret, uid)
        return cache[uid]

    pixels, frames = _redact_pixels(ds, tsyntax, grey_frames, sector)
    _clean_dataset(ds, uid_map)
    ds.PatientName = patient_pseudonym
    ds.PatientID = patient_pseudonym
    _stamp(ds, redacted=pixels != "unchanged")
    conform_us(ds, zone=zone)
    meta = ds.file_meta
    for keyword in list(meta.dir()):
        elem = meta[keyword]
        if elem.VR == "UI" and keyword not in _KEEP_UIDS and elem.value:
            elem.value = uid_map(str(elem.value))
    if "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if pixels != "redacted-reencoded" and not tsyntax.is_compressed:
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return DeidResult(
        data=file_bytes(ds, frames), sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        study_instance_uid=str(ds.get("StudyInstanceUID", "")), series_instance_uid=str(ds.get("SeriesInstanceUID", "")),
        pixels=pixels,
    )


def _redact_pixels(ds: Any, tsyntax: Any, grey_frames: np.ndarray, sector: Sector) -> tuple[str, list[bytes] | None]:
    """Redact the pixel data outside the sector, natively when it can (see
    :func:`deidentify_dataset`); returns what happened (``DeidResult.pixels``) and, when the
    frames were re-encoded, the encoded frames that the file is written around."""
    if "PixelData" not in ds:
        return "unchanged", None
    if not sector.found:
        if not tsyntax.is_compressed:
            _trim_native_excess(ds)
        return "unchanged", None
    if not tsyntax.is_compressed:
        try:
            if _redact_native(ds, sector.mask):
                return "redacted-native", None
        except (ValueError, AttributeError, KeyError, NotImplementedError):
            pass
    return "redacted-reencoded", reencode_grey(ds, grey_frames, sector.mask)


def dicom_from_frames(grey: np.ndarray, *, secret: str, source_sha256: str, patient_pseudonym: str,
                      fps: float | None, manufacturer: str = "", model: str = "", zone: str = "") -> DeidResult:
    """A de-identified Ultrasound (Multi-frame) Image DICOM holding ``grey`` frames (already
    redacted), JPEG-LS lossless, for uploads that were videos or images: their containers can
    carry metadata (titles, comments, GPS) that we do not parse, so they are not kept."""
    # lazy: pydicom only when a clip is stored as DICOM
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.tag import Tag
    from pydicom.uid import UID, ExplicitVRLittleEndian

    multi = grey.shape[0] > 1
    sop_class = "1.2.840.10008.5.1.4.1.1.3.1" if multi else "1.2.840.10008.5.1.4.1.1.6.1"
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(sop_class)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = remap_uid(secret, f"sop:{source_sha256}")
    ds.StudyInstanceUID = remap_uid(secret, f"study:{source_sha256}")
    ds.SeriesInstanceUID = remap_uid(secret, f"series:{source_sha256}")
    ds.file_meta.MediaStorageSOPInstanceUID = UID(ds.SOPInstanceUID)
    ds.Modality = "US"
    ds.PatientName = ds.PatientID = patient_pseudonym
    ds.PatientBirthDate = ds.PatientSex = ds.StudyDate = ds.StudyTime = ds.ReferringPhysicianName = ""
    ds.AccessionNumber, ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "", "", 1, 1
    ds.Manufacturer, ds.ManufacturerModelName = manufacturer[:64], model[:64]
    ds.ImageType = ["DERIVED", "PRIMARY"]
    if multi:
        # Frame Increment Pointer is Type 1 in the Multi-frame module (PS3.3 C.7.6.6) and Type 1C,
        # "required if Number of Frames > 1", in the US Image module (C.8.5.6, Enumerated Value
        # Frame Time), and Frame Time is then Type 1C in the Cine module (C.7.6.5). A video or
        # GIF that gives no rate gets NOMINAL_FPS; CineRate (Type 3) only states a known rate.
        ds.FrameTime = f"{1000.0 / (fps or NOMINAL_FPS):.4f}".rstrip("0").rstrip(".")
        if fps:
            ds.CineRate = round(fps)
        ds.FrameIncrementPointer = Tag("FrameTime")
    frames = reencode_grey(ds, grey)
    if not multi and "NumberOfFrames" in ds:
        del ds["NumberOfFrames"]
    _stamp(ds, redacted=True)
    conform_us(ds, zone=zone)
    return DeidResult(file_bytes(ds, frames), str(ds.SOPInstanceUID), str(ds.StudyInstanceUID),
                      str(ds.SeriesInstanceUID), "redacted-reencoded")
