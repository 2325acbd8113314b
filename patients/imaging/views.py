"""Clip pages: the clip page, its stored and original files, frame images, deletion, and the
exam page's upload form (the exam page itself is a dashboard)."""
from __future__ import annotations

import io
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from lusweb.errors import ServiceError
from patients.audit.models import AuditAction
from patients.audit.services import audit_record
from patients.imaging import selectors, services, video
from patients.imaging.forms import ClipUploadForm
from patients.imaging.ingest import clip_accept
from patients.imaging.models import ZoneClip
from patients.imaging.names import safe_filename
from patients.imaging.ranged import Served, ranged_response
from patients.records import chrono
from patients.records.models import Exam
from patients.studies import permissions


def exam_page_upload(request: HttpRequest, exam: Exam) -> tuple[ClipUploadForm, bool]:
    """The exam page's upload form, posted: (the bound form, whether the upload was taken). The
    outcome is told with a message; the upload is accepted as the API's is (``clip_accept``) and
    checked by a worker, and the page shows the zone as being checked until it is ready or failed."""
    permissions.require_write(request.user, exam.study)
    form = ClipUploadForm(request.POST, request.FILES)
    if len(request.FILES.getlist("file")) > 1:
        messages.error(request, f"Choose one file per upload ({len(request.FILES.getlist('file'))} were sent).")
        return form, False
    if not form.is_valid():
        messages.error(request, _upload_form_problem(request, form))
        return form, False
    upload = form.cleaned_data["file"]
    name = safe_filename(upload.name or "")
    try:
        result = clip_accept(exam=exam, upload=upload, zone=form.cleaned_data["zone"], by=request.user,
                             filename=name, replace=form.cleaned_data["replace"])
    except ServiceError as exc:
        messages.error(request, f"{name}: {exc.message}")
        return form, False
    if result.created:
        messages.success(request, f"{name} received for zone {result.clip.zone}: checking the file…")
    else:
        messages.success(request, f"{name} was already stored as zone {result.clip.zone}.")
    return form, True


def _upload_form_problem(request: HttpRequest, form: ClipUploadForm) -> str:
    """What is wrong with a refused upload form, naming the file: empty, missing, or no zone."""
    sent = request.FILES.get("file")
    if sent is not None and not sent.size:
        return f"{safe_filename(sent.name or '') or 'The file'} is empty (0 bytes): nothing to store. Choose the clip's file again."
    problems = []
    if "zone" in form.errors:
        problems.append("choose a zone")
    if "file" in form.errors:
        problems.append("choose a file" if sent is None else f"the file: {' '.join(str(e) for e in form.errors['file'])}")
    return ("Upload refused: " + "; ".join(problems) + ".") if problems else "Upload refused."


@login_required
def clip_detail(request: HttpRequest, pk: int) -> HttpResponse:
    clip, _role = selectors.clip_for(user=request.user, pk=pk)
    return render(request, "imaging/clip_detail.html", {
        "clip": clip, "exam": clip.exam, "patient": clip.exam.patient, "study": clip.exam.study,
        "clock": chrono.clock_for(user=request.user, patient=clip.exam.patient),
        "identifying": permissions.can_see_identifying(request.user, clip.exam.study),
    })


@login_required
def clip_original(request: HttpRequest, pk: int) -> FileResponse:
    """The stored file: the de-identified DICOM in de-identifying studies (anyone in the study),
    otherwise the untouched upload (clinicians and study admins only, audited)."""
    clip, _role = selectors.clip_for(user=request.user, pk=pk)
    if clip.deidentified:
        return FileResponse(clip.file.open("rb"), as_attachment=True, filename=f"clip-{clip.pk}-deidentified.dcm")
    return _identifying_download(request, clip, clip.file, "original")


@login_required
def clip_source(request: HttpRequest, pk: int) -> FileResponse:
    """The untouched upload kept beside a de-identified clip (``keep_original`` studies)."""
    clip, _role = selectors.clip_for(user=request.user, pk=pk)
    if not clip.source:
        raise Http404("this clip's original was not kept (the study does not keep originals)")
    return _identifying_download(request, clip, clip.source, "source")


def _identifying_download(request: HttpRequest, clip: ZoneClip, field: Any, which: str) -> FileResponse:
    study = clip.exam.study
    if not permissions.can_see_identifying(request.user, study):
        raise PermissionDenied("The original file may identify the patient: clinicians and study admins only.")
    audit_record(actor=request.user, action=AuditAction.VIEW_IDENTIFYING, study=study, obj=clip,
                 changes={"download": which})
    name = clip.original_filename or f"clip-{clip.pk}.{clip.format}"
    return FileResponse(field.open("rb"), as_attachment=True, filename=name)


@login_required
def clip_frame(request: HttpRequest, pk: int, index: int) -> HttpResponse:
    """One decoded frame as PNG (for previews and the cine viewer)."""
    from PIL import Image  # lazy: only frame images need Pillow

    clip, _role = selectors.clip_for(user=request.user, pk=pk)
    try:
        frame = selectors.clip_frame_for(clip=clip, user=request.user, index=index)
    except IndexError as exc:
        raise Http404(str(exc)) from None
    except selectors.FramesWithheld as exc:
        return HttpResponse(str(exc), status=403, content_type="text/plain; charset=utf-8")
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG", compress_level=1)
    response = HttpResponse(buf.getvalue(), content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
def clip_video(request: HttpRequest, pk: int) -> HttpResponseBase:
    """The clip as one H.264 MP4 for the viewer (made once, then served from storage), with
    ETag/Last-Modified, private caching (patient data) and byte ranges for seeking."""
    clip, _role = selectors.clip_for(user=request.user, pk=pk)
    try:
        made = video.clip_video_for(clip=clip, user=request.user)
    except selectors.FramesWithheld as exc:
        return HttpResponse(str(exc), status=403, content_type="text/plain; charset=utf-8")
    storage = clip.frames.storage
    served = Served(storage=storage, name=made.name, content_type=video.CONTENT_TYPE, etag=made.etag,
                    last_modified=(clip.checked_at or clip.created_at).timestamp(),
                    # Private: patient data never sits in a shared cache. Revalidated after an hour,
                    # so a user who lost access stops seeing it then at the latest.
                    cache_control="private, max-age=3600")
    return ranged_response(request, served)


@login_required
def clip_strip(request: HttpRequest, pk: int) -> HttpResponse:
    """The clip's frames stacked vertically in one PNG (the review mode's player: one request per
    zone); the headers say how to cut and play it."""
    from PIL import Image  # lazy: only frame images need Pillow

    clip, _role = selectors.clip_for(user=request.user, pk=pk)
    try:
        strip = selectors.clip_strip_for(clip=clip, user=request.user)
    except selectors.FramesWithheld as exc:
        return HttpResponse(str(exc), status=403, content_type="text/plain; charset=utf-8")
    buf = io.BytesIO()
    Image.fromarray(strip.image).save(buf, format="PNG", compress_level=1)
    response = HttpResponse(buf.getvalue(), content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Frame-Count"] = str(strip.count)
    response["X-Frame-Width"] = str(strip.width)
    response["X-Frame-Height"] = str(strip.height)
    response["X-Frame-Fps"] = f"{strip.fps:g}"
    response["X-Clip-Frame-Count"] = str(strip.clip_frames)
    return response


@login_required
@require_POST
def clip_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete a clip, or remove an upload being checked or failed (the exam page's "remove")."""
    clip, _role = selectors.clip_for(user=request.user, pk=pk, any_status=True)
    exam = clip.exam
    try:
        services.clip_delete(clip=clip, by=request.user)
    except PermissionDenied as exc:
        messages.error(request, str(exc))
    return redirect(exam)
