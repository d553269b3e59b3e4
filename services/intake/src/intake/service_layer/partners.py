"""The partner directory: operators register, replace, deactivate and bulk-import partners and issue their keys;
a partner rotates its webhook secret. A webhook target inside the platform's network (SSRF) is refused."""

from dataclasses import dataclass, field
from datetime import timedelta

from goglobal_shared.webhook_targets import webhook_url_problem
from intake.auth.keys import IssuedKey, Role
from intake.domain.inputs.partner import PartnerProfile, PartnerRecord
from intake.domain.partner_import import ImportFormat, detect_format, parse_partners
from intake.service_layer.errors import Conflict, FieldError, InvalidInput, NotFound, UnsupportedFormat
from intake.service_layer.ports import Clock, KeyStore, PartnerStore, Record, Saved

WEBHOOK_URL = "delivery.webhook_url"


@dataclass(frozen=True)
class RowError:
    line: int
    field: str
    message: str


@dataclass
class Imported:
    """What an import did: rows created and updated, and every refused row's errors (`failed` rows)."""

    created: int = 0
    updated: int = 0
    failed: int = 0
    errors: list[RowError] = field(default_factory=list)


@dataclass(frozen=True)
class Partners:
    partners: PartnerStore
    keys: KeyStore
    clock: Clock
    allow_private_webhook_targets: bool = False
    webhook_secret_overlap_s: float = 0.0

    async def read(self, partner_id: str) -> Record:
        doc = await self.partners.get(partner_id)
        if doc is None:
            raise NotFound("partner", partner_id)
        return doc

    async def register(self, record: PartnerRecord, actor: str) -> Saved:
        """A new partner; one with this id exists already: refused (replace it instead)."""
        if await self.partners.get(record.id) is not None:
            raise Conflict(f"partner {record.id!r} exists; use PUT to change it", "partner-exists")
        return await self.replace(record.id, PartnerProfile.model_validate(record.model_dump(exclude={"id"})), actor)

    async def replace(self, partner_id: str, profile: PartnerProfile, actor: str) -> Saved:
        """Creates or replaces the profile; matching's copy follows through `partner.upserted`."""
        problem = self._webhook_problem(profile)
        if problem:
            raise InvalidInput([FieldError(WEBHOOK_URL, problem, "webhook_target")])
        return await self.partners.upsert(partner_id, profile, actor, self.clock())

    async def deactivate(self, partner_id: str, actor: str) -> Saved:
        """Partners are deactivated, never erased: their referrals' history keeps pointing at them."""
        doc = await self.read(partner_id)
        profile = PartnerProfile.model_validate({**doc["profile"], "active": False})
        return await self.partners.upsert(partner_id, profile, actor, self.clock())

    async def rotate_secret(self, partner_id: str, actor: str) -> Saved:
        """A new webhook secret; the previous one keeps signing for the configured overlap."""
        now = self.clock()
        overlap_until = now + timedelta(seconds=self.webhook_secret_overlap_s)
        saved = await self.partners.rotate_secret(partner_id, overlap_until, actor, now)
        if saved is None:
            raise NotFound("partner", partner_id)
        return saved

    async def issue_key(self, partner_id: str, name: str) -> IssuedKey:
        """A key for the partner's own systems."""
        await self.read(partner_id)
        return await self.keys.create(Role.PARTNER, partner_id, name, self.clock())

    async def import_file(
        self, body: bytes, content_type: str | None, declared: ImportFormat | None, actor: str
    ) -> Imported:
        """Creates or replaces every good row of a CSV, JSON or HSDS upload, each written whole or not at all; a
        bad row is reported with its line and field and never stops the good rows."""
        try:
            fmt = detect_format("upload", content_type, body, declared=declared)
        except ValueError as exc:
            raise UnsupportedFormat(f"{exc}; send text/csv or application/json") from exc
        report = Imported()
        for row in parse_partners(body, fmt):
            if row.partner is None:
                report.failed += 1
                report.errors.extend(RowError(row.line, e.field, e.message) for e in row.errors)
                continue
            profile = PartnerProfile.model_validate(row.partner.model_dump(exclude={"id"}))
            problem = self._webhook_problem(profile)
            if problem:
                report.failed += 1
                report.errors.append(RowError(row.line, "webhook_url", problem))
                continue
            saved = await self.partners.upsert(row.partner.id, profile, actor, self.clock())
            report.created += saved.created
            report.updated += not saved.created
        return report

    def _webhook_problem(self, profile: PartnerProfile) -> str | None:
        url = profile.delivery.webhook_url
        return webhook_url_problem(str(url), self.allow_private_webhook_targets) if url else None
