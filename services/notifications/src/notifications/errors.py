"""What notifications' ports refuse, and the one refusal of its use cases. The use cases (`notifications.service`)
turn each port's refusal into the verdict of a delivery attempt, in one place: a refused webhook target or a refused
e-mail is not tried again, a passing e-mail failure is. `PartnerNotKnownYet` goes to the consumer, which retries."""


class PartnerNotKnownYet(RuntimeError):
    """A partner event for a partner this service's directory does not hold yet: its `partner.upserted` is still on
    its way (the two travel on different topics). Transient: the event is tried again, never dropped."""


class TargetRefused(ValueError):
    """The URL points somewhere a webhook must never go (loopback, private ranges) unless allowed."""


class EmailError(Exception):
    """A message could not be handed to the SMTP server; `code` is the server's reply code, if it answered."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class TransientEmailError(EmailError):
    """Worth retrying later: a 4xx reply, or no usable connection to the server."""


class PermanentEmailError(EmailError):
    """The server refused the message with a 5xx reply (or it could not be built): sending it again will not
    help."""
