"""Domain and repository errors as problem details."""

from goglobal_shared.problems import ProblemError


def not_found(what: str, ident: str) -> ProblemError:
    return ProblemError(404, f"{what}-not-found", f"no {what.replace('-', ' ')} {ident!r} that you can see")


def conflict(detail: str) -> ProblemError:
    return ProblemError(409, "conflict", detail)
