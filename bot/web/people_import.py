"""Importing the people directory from the web console: upload, dry run, confirmation.

Uploading a file runs every check of ``fidelio people import`` and shows what applying it
would change (people added, changed field by field, leaving; teams created or re-linked),
writing nothing. The confirmation carries the file back (base64) with a token binding, under
the secret key, the session, the file's SHA-256, the fingerprint of the changes shown and the
time of the dry run. Applying re-reads and re-checks the file in the transaction that writes
it, and goes ahead only when the changes are still exactly the ones shown: a file altered in
the page, a directory changed in between, a confirmation sent twice or too late is refused
and nothing is written.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web

from bot.csv_files import ImportFailed
from bot.db.models import AuditEntry, Person
from bot.people import CsvUpload, PlanChanged, import_people, preview_import
from bot.people.csv_rows import COLUMNS
from bot.people.preview import ImportPreview
from bot.web.access import Viewer
from bot.web.shared import Web, see_other, viewer_of

#: The largest people file the console takes (a 10,000-person directory is about 1.5 MiB).
MAX_UPLOAD = 2 * 1024 * 1024
#: How long a dry run can be confirmed.
CONFIRM_WITHIN = timedelta(minutes=30)
MAX_NAME = 120


@dataclass(frozen=True)
class Problem:
    """A problem of the file as the page lists it: line (0: the file), column, reason."""

    line: int
    column: str
    reason: str


def problems_of(failed: ImportFailed) -> list[Problem]:
    """The import's ``file:line: column: reason`` problems, split for a table."""
    out = []
    for error in failed.problems:
        _, _, line = error.where.rpartition(":")
        column, sep, reason = error.reason.partition(": ")
        if not sep or column not in COLUMNS:
            column, reason = "", error.reason
        out.append(Problem(int(line) if line.isdigit() else 0, column, reason))
    return out


def confirmation_token(secret: str, viewer: Viewer, upload: CsvUpload, digest: str, at: int) -> str:
    """``<time>.<changes digest>.<mac>``: the mac binds the session, the file and the changes."""
    key = hashlib.sha256(f"fidelio-web-people-import:{secret}".encode()).digest()
    message = f"{viewer.session_id}:{upload.sha256}:{digest}:{at}".encode()
    mac = hmac.new(key, message, hashlib.sha256).hexdigest()
    return f"{at}.{digest}.{mac}"


def check_token(
    secret: str, viewer: Viewer, upload: CsvUpload, token: str, now: datetime
) -> tuple[str | None, str]:
    """(the digest of the changes the token confirms, or None) and the problem's name."""
    at_text, _, rest = token.partition(".")
    digest, _, _mac = rest.partition(".")
    if not at_text.isdigit():
        return None, "tampered"
    expected = confirmation_token(secret, viewer, upload, digest, int(at_text))
    if not hmac.compare_digest(expected.encode(), token.encode()):
        return None, "tampered"
    if now.timestamp() - int(at_text) > CONFIRM_WITHIN.total_seconds():
        return None, "expired"
    return digest, ""


async def read_upload(request: web.Request) -> tuple[CsvUpload | None, str]:
    """The uploaded file (field ``file``), or None and the problem (empty, too large)."""
    form = await request.post()
    field = form.get("file")
    if not isinstance(field, web.FileField):
        return None, "no_file"
    raw = field.file.read(MAX_UPLOAD + 1)
    if len(raw) > MAX_UPLOAD:
        return None, "too_large"
    if not raw:
        return None, "no_file"
    name = (field.filename or "people.csv").replace("/", "_")[-MAX_NAME:]
    return CsvUpload(name, raw), ""


def defaults(shared: Web) -> dict[str, str]:
    organisation = shared.settings.organisation
    return {
        "default_locale": organisation.default_locale,
        "default_timezone": organisation.default_timezone,
    }


async def dry_run(request: web.Request, shared: Web, person: Person) -> web.StreamResponse:
    """Check the uploaded file and show what applying it would change; writes nothing
    (but the audit entry saying a dry run was made)."""
    viewer = viewer_of(request)
    assert viewer is not None  # the page requires HR
    upload, problem = await read_upload(request)
    if upload is None:
        return shared.page(request, "people_import", status=400, upload_problem=problem)
    try:
        preview = await preview_import(shared.db, upload, shared.clock, **defaults(shared))
    except ImportFailed as failed:
        return shared.page(
            request,
            "people_import",
            status=400,
            upload=upload,
            problems=problems_of(failed),
        )
    at = int(shared.clock.now().timestamp())
    token = confirmation_token(shared.secret, viewer, upload, preview.digest, at)
    await audit(shared, person, "people.import_dry_run", upload, preview)
    return shared.page(
        request,
        "people_import",
        upload=upload,
        preview=preview,
        content=base64.b64encode(upload.raw).decode(),
        token=token,
    )


async def apply(request: web.Request, shared: Web, person: Person) -> web.StreamResponse:
    """Apply the file of a dry run, when the changes are still exactly those shown."""
    viewer = viewer_of(request)
    assert viewer is not None  # the page requires HR
    form = await request.post()
    name = str(form.get("name") or "people.csv")[:MAX_NAME]
    try:
        raw = base64.b64decode(str(form.get("content") or ""), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    upload = CsvUpload(name, raw)
    digest, problem = check_token(
        shared.secret, viewer, upload, str(form.get("token") or ""), shared.clock.now()
    )
    if digest is None:
        return await refused(request, shared, person, upload, problem)
    try:
        summary = await import_people(
            shared.db,
            upload,
            shared.clock,
            actor=person,
            expected=digest,
            **defaults(shared),
        )
    except (PlanChanged, ImportFailed):
        return await refused(request, shared, person, upload, "stale")
    counts = f"created={summary.created}&updated={summary.updated}"
    return see_other(f"/hr/people?notice=imported&{counts}&teams={summary.teams_created}")


async def refused(
    request: web.Request, shared: Web, person: Person, upload: CsvUpload, problem: str
) -> web.StreamResponse:
    """A confirmation that cannot be applied: said on the page and in the audit log."""
    async with shared.db.session() as session:
        session.add(
            AuditEntry.by(
                person,
                shared.clock.now(),
                "people.import_refused",
                file=upload.name,
                sha256=upload.sha256,
                reason=problem,
                channel="web",
            )
        )
    return shared.page(request, "people_import", status=409, refused=problem)


async def audit(
    shared: Web, person: Person, action: str, upload: CsvUpload, preview: ImportPreview
) -> None:
    """Record a dry run: who, which file (name and SHA-256), what it would change."""
    async with shared.db.session() as session:
        session.add(
            AuditEntry.by(
                person,
                shared.clock.now(),
                action,
                file=upload.name,
                sha256=upload.sha256,
                added=len(preview.added),
                changed=len(preview.changed),
                channel="web",
            )
        )
