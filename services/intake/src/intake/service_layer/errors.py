"""What a use case refuses with. The HTTP edge answers each as an RFC 9457 problem (`intake.api.errors`), the
console as a message, the event consumers as a dead letter."""

from dataclasses import dataclass


class ServiceError(Exception):
    """A use case refused; `slug` names the kind of problem for the caller's program."""

    slug = "refused"


class NotFound(ServiceError):
    """No such `what` that the caller may see: one that exists but is not theirs is answered the same way."""

    def __init__(self, what: str, ident: str) -> None:
        super().__init__(f"no {what.replace('-', ' ')} {ident!r} that you can see")
        self.slug = f"{what}-not-found"


class Conflict(ServiceError):
    """The state of what the caller acts on does not allow it (an illegal transition, a taken key)."""

    def __init__(self, detail: str, slug: str = "conflict") -> None:
        super().__init__(detail)
        self.slug = slug


class PartnerNotActive(Conflict):
    """An assignment named a partner that does not exist or is deactivated."""

    def __init__(self, partner_id: str) -> None:
        super().__init__(f"{partner_id!r} is not an active partner")
        self.partner_id = partner_id


@dataclass(frozen=True)
class FieldError:
    """One refused field of the input, dotted from the input's root (`delivery.webhook_url`)."""

    field: str
    message: str
    type: str


class InvalidInput(ServiceError):
    """The input breaks a rule that its own schema could not check (a merged profile, a webhook target)."""

    slug = "validation"

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__(", ".join(e.field for e in errors))
        self.errors = errors


class UnsupportedFormat(ServiceError):
    """An upload in no format the use case reads."""

    slug = "unknown-import-format"
