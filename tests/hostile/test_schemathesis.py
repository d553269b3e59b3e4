"""Property-based tests of the whole intake API from its live OpenAPI document (Schemathesis), once per kind of
caller: anonymous, an enterprise, a partner and an operator, against intake + matching + notifications running as
real processes on the real broker and database.

Every operation gets positive and negative examples; every answer must be no 5xx and must conform to the document
(status code, content type, body schema). A stateful run follows the links Schemathesis infers between operations
(e.g. GET /v1/service-requests -> GET /v1/service-requests/{request_id}, POST ... -> GET ...).

Any failure fails the test with the request to reproduce it (the bugs earlier runs found each have a regression
test in `test_regressions.py`). `GOGLOBAL_HOSTILE_EXAMPLES` (default 15) sets the examples per
operation and mode, e.g. `GOGLOBAL_HOSTILE_EXAMPLES=200` for a deep run (no time budget then);
`GOGLOBAL_HOSTILE_BUDGET_S` (default 40 s per caller) bounds the default run on a loaded machine.
"""

import json
import math
import os
import re
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import hypothesis
import pytest
import requests
import schemathesis
import schemathesis.checks
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from hypothesis.errors import Flaky, Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode, Response
from schemathesis.core.failures import Failure, FailureGroup, ServerError
from schemathesis.core.result import Ok
from schemathesis.generation.stateful.state_machine import APIStateMachine, StepInput, StepOutput
from schemathesis.schemas import BaseSchema

from intake.api.middleware import IDEMPOTENCY_KEY_PATTERN
from tests import factories
from tests.support import READY_DEADLINE_S, Infra, eventually
from tests.world import World, bearer, key_id, new_namespace, running_world

Role = Literal["anonymous", "enterprise", "partner", "operator"]
ROLES: tuple[Role, ...] = ("anonymous", "enterprise", "partner", "operator")


def examples(default: int) -> int:
    """How many examples each property test draws: `GOGLOBAL_HOSTILE_EXAMPLES` for deeper runs."""
    raw = os.environ.get("GOGLOBAL_HOSTILE_EXAMPLES", "")
    return max(1, int(raw)) if raw.strip().isdigit() else default


EXAMPLES = examples(15)
NEGATIVE_EXAMPLES = max(2, EXAMPLES // 5)
SCENARIOS = max(EXAMPLES + 5, 20)
BATCH = 5
# Seconds per caller for the generated examples beyond each operation's first batch (a loaded machine gets fewer):
# `GOGLOBAL_HOSTILE_BUDGET_S`; none by default when `GOGLOBAL_HOSTILE_EXAMPLES` asks for a deep run.
BUDGET_S = float(
    os.environ.get("GOGLOBAL_HOSTILE_BUDGET_S") or (math.inf if os.environ.get("GOGLOBAL_HOSTILE_EXAMPLES") else 40)
)  # stateful: each scenario is a chain of up to 6 calls
# A caller refused this many times in a row (401/403 whatever the input) has shown what it can do there:
# later examples of that operation are still generated but not sent, which keeps the run bounded.
REFUSALS_ENOUGH = 4
REQUEST_TIMEOUT_S = 30.0
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]
GULF_LEGAL, GULF_TREASURY = "gulf-legal", "gulf-treasury"
VALID_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)
AnyCase = Case[Any]
PARTNER = "/v1/partners/{partner_id}"
Operation = APIOperation[Any, Any, Any, Any]


# -- findings -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    role: str
    operation: str
    kind: str
    status: int | None
    message: str
    curl: str

    def __str__(self) -> str:
        return f"[{self.role}] {self.operation} -> {self.status}: {self.kind}\n  {self.message}\n  {self.curl}"


def _problem(response: Response, member: str) -> str:
    try:
        body = json.loads(response.content or b"null")
    except ValueError:
        return ""
    return str(body.get(member, "")) if isinstance(body, dict) else ""


def by_design(failure: Failure, case: AnyCase, response: Response) -> bool:
    """/readyz answers 503 while a dependency is away: that is its job (the broker here is shared and restarted
    by other suites), so it is not a server error; its status code is checked as documented or not."""
    return isinstance(failure, ServerError) and case.operation.path == "/readyz" and response.status_code == 503


@dataclass
class Findings:
    role: str
    secrets: list[str]
    items: dict[tuple[str, str, int | None], Finding] = field(default_factory=dict)
    requests: int = 0
    answers: Counter[tuple[str, int]] = field(default_factory=Counter)  # (operation, status) -> how often

    def failed(self, case: AnyCase, response: Response, failures: list[Failure]) -> None:
        for failure in failures:
            if by_design(failure, case, response):
                continue
            key = (case.operation.label, type(failure).__name__, response.status_code)
            if key not in self.items:
                message = " ".join(f"{failure.title}: {failure.message}".split())[:400]
                self.items[key] = Finding(
                    self.role, case.operation.label, type(failure).__name__, response.status_code, message,
                    self._curl(case),
                )  # fmt: skip

    def broken(self, case: AnyCase, exc: Exception) -> None:
        key = (case.operation.label, type(exc).__name__, None)
        self.items.setdefault(
            key, Finding(self.role, case.operation.label, type(exc).__name__, None, str(exc)[:400], self._curl(case))
        )

    def _curl(self, case: AnyCase) -> str:
        curl = case.as_curl_command()
        for secret in self.secrets:
            curl = curl.replace(secret, "<key>")
        return curl

    def assert_none(self) -> None:
        print(f"{self.role}: {self.requests} requests")
        by_operation: dict[str, list[str]] = {}
        for (operation, status), count in sorted(self.answers.items()):
            by_operation.setdefault(operation, []).append(f"{status}x{count}")
        print(*(f"  {operation}: {' '.join(answers)}" for operation, answers in by_operation.items()), sep="\n")
        failures = list(self.items.values())
        report = "\n\n".join(str(f) for f in failures)
        assert not failures, f"{len(failures)} failures as {self.role} ({self.requests} requests):\n\n{report}"


# -- the world ------------------------------------------------------------------------------------------------------


@dataclass
class Api:
    world: World
    schema: BaseSchema
    keys: dict[Role, str]
    protected_key_ids: frozenset[str]  # the keys the run uses: never revoked by a generated DELETE

    def auth(self, role: Role) -> dict[str, str]:
        return {} if role == "anonymous" else bearer(self.keys[role])

    def findings(self, role: Role) -> Findings:
        return Findings(role, list(self.keys.values()))

    def operations(self) -> Iterator[Operation]:
        for result in self.schema.get_all_operations():
            assert isinstance(result, Ok), f"the document has an operation Schemathesis cannot read: {result.err()}"
            yield result.ok()

    def prepare(self, case: AnyCase) -> None:
        """Keeps the run's own keys alive, and each example's Idempotency-Key its own."""
        revoking = case.operation.method.upper() == "DELETE" and case.operation.path == "/v1/api-keys/{key_id}"
        if revoking and (case.path_parameters or {}).get("key_id") in self.protected_key_ids:
            case.path_parameters = {"key_id": uuid.uuid4().hex[:16]}  # a key that does not exist: 404
        key = case.headers.get("Idempotency-Key") if case.headers else None
        if key is not None and VALID_IDEMPOTENCY_KEY.fullmatch(key):
            # Generated keys repeat ("0", "00", ...): the second request with one would get the first one's stored
            # answer, or 422 for reusing it, and never reach the route. A fresh valid key keeps each example its
            # own; a malformed one is sent as generated (400, documented).
            case.headers["Idempotency-Key"] = uuid.uuid4().hex

    def exercise(self, case: AnyCase, role: Role, findings: Findings) -> Response | None:
        self.prepare(case)
        headers = self.auth(role)
        findings.requests += 1
        try:
            response = case.call(headers=headers, timeout=REQUEST_TIMEOUT_S)
        except requests.RequestException as exc:  # the service went away or hung: always a finding
            findings.broken(case, exc)
            return None
        findings.answers[(case.operation.label, response.status_code)] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            findings.failed(case, response, list(group.exceptions))
        return response


@pytest.fixture(scope="module")
async def api(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    async with running_world(new_namespace(infra), tmp_path_factory.mktemp("schemathesis")) as world:
        partner = await world.add_partner(GULF_LEGAL, ["legal"], ["AE", "SA"])
        await world.add_partner(GULF_TREASURY, ["banking_and_fund_management"], ["AE"])
        submitted = [await world.submit(factories.TWO_NEEDS["needs"]) for _ in range(2)]
        await world.all_offered([s["id"] for s in submitted])  # ids, offers and inbox items exist to be found
        schema = schemathesis.openapi.from_url(f"{world.services['intake'].url}/openapi.json")
        keys: dict[Role, str] = {"enterprise": world.enterprise.key, "partner": partner, "operator": world.operator}
        yield Api(world, schema, keys, frozenset(key_id(k) for k in keys.values()))


def _settings(max_examples: int, **extra: Any) -> hypothesis.settings:
    return hypothesis.settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
        **extra,
    )


def _budget(role: Role) -> list[tuple[GenerationMode, int]]:
    if role == "anonymous":  # every operation but four answers 401 whatever the input
        return [(GenerationMode.POSITIVE, max(3, EXAMPLES // 3)), (GenerationMode.NEGATIVE, 2)]
    return [(GenerationMode.POSITIVE, EXAMPLES), (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES)]


@dataclass
class Refusals:
    """Counts a caller's consecutive 401/403 answers on one operation, for as long as nothing else came back."""

    count: int = 0
    served: bool = False

    def saw(self, status: int) -> None:
        if status in (401, 403):
            self.count += 1
        else:
            self.served = True

    @property
    def enough(self) -> bool:
        return not self.served and self.count >= REFUSALS_ENOUGH


def fuzz(
    api: Api,
    strategy: st.SearchStrategy[AnyCase],
    role: Role,
    count: int,
    findings: Findings,
    refusals: Refusals,
    counts_refusals: bool,
) -> None:
    def example(case: AnyCase) -> None:
        if refusals.enough:
            return
        response = api.exercise(case, role, findings)
        if response is not None and counts_refusals:
            refusals.saw(response.status_code)

    run: Callable[[], None] = hypothesis.given(case=strategy)(example)
    _settings(count)(run)()


def exercise_operation(
    api: Api, operation: Operation, role: Role, findings: Findings, deadline: float = math.inf
) -> None:
    """The document's own examples (valid requests, so the success answers get checked too), then generated positive
    examples, then negative ones, in batches. Every operation gets its examples and a first batch of each mode; the
    other batches stop at `deadline`, or at once for a caller refused whatever it sends (401/403)."""
    refusals = Refusals()
    for strategy in operation.get_strategies_from_examples():
        fuzz(api, strategy, role, 1, findings, refusals, counts_refusals=True)
    for mode, count in _budget(role):
        strategy = operation.as_strategy(generation_mode=mode)
        positive = mode is GenerationMode.POSITIVE
        first = min(count, REFUSALS_ENOUGH if positive else 2)
        batches = [first, *([BATCH] * ((count - first) // BATCH)), (count - first) % BATCH]
        for number, batch in enumerate(batches):
            if batch <= 0 or refusals.enough or (number > 0 and time.monotonic() > deadline):
                continue
            try:
                fuzz(api, strategy, role, batch, findings, refusals, counts_refusals=positive)
            except Unsatisfiable:
                # Negative data needs something to break: GET /healthz has no parameter, body or key to get wrong.
                assert mode is GenerationMode.NEGATIVE, f"no valid example of {operation.label}"
                break


async def _assert_still_serving(api: Api) -> None:
    """Every service runs, and is (or soon becomes) ready: the broker is shared, and another suite may be
    restarting it just now, which /readyz rightly reports for a while."""
    assert all(code is None for code in api.world.alive().values()), f"a service died:\n{api.world.logs()}"

    async def ready() -> bool:
        api.world.assert_running()
        return set((await api.world.ready()).values()) == {200}

    await eventually(ready, f"every service ready after the run\n{api.world.logs()}", READY_DEADLINE_S)


@pytest.mark.parametrize("role", ROLES)
async def test_every_operation_answers_as_documented(api: Api, role: Role) -> None:
    findings, operations = api.findings(role), list(api.operations())
    started = time.monotonic()
    for number, operation in enumerate(operations, start=1):  # each operation's fair share of the budget
        exercise_operation(api, operation, role, findings, started + BUDGET_S * number / len(operations))
    await _assert_still_serving(api)
    findings.assert_none()


# -- stateful -------------------------------------------------------------------------------------------------------


class _Calls(APIStateMachine):
    """What every state machine of this module adds: the caller's key, the guards, and the findings."""

    api: Api
    role: Role
    findings: Findings
    followed: list[tuple[str, int]]  # (link, status) of every step that came through a link
    scenarios: list[int]  # one entry per scenario started

    def setup(self) -> None:
        self.scenarios.append(1)

    def get_call_kwargs(self, case: AnyCase) -> dict[str, Any]:
        return {"headers": self.api.auth(self.role), "timeout": REQUEST_TIMEOUT_S}

    def call(self, case: AnyCase, **kwargs: Any) -> Response:
        self.api.prepare(case)
        self.findings.requests += 1
        return case.call(**kwargs)

    def _step(self, input: StepInput) -> StepOutput | None:
        # Never raise into Hypothesis: a replay would meet a server in another state (it flags that as flaky).
        # A transport error or an exception from a check is a finding like any other.
        try:
            return self.step(input)
        except Exception as exc:
            self.findings.broken(input.case, exc)
            return None

    def step(self, input: StepInput) -> StepOutput:
        output = super().step(input)
        if input.transition is not None and input.is_applied:
            self.followed.append((input.transition.id, output.response.status_code))
        return output

    def validate_response(
        self, response: Response, case: AnyCase, additional_checks: list[Any] | None = None, **kwargs: Any
    ) -> None:
        self.findings.answers[(case.operation.label, response.status_code)] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=kwargs.get("headers"))
        except FailureGroup as group:
            self.findings.failed(case, response, list(group.exceptions))


def state_machine(api: Api, role: Role, findings: Findings, followed: list[tuple[str, int]]) -> type[APIStateMachine]:
    base = api.schema.as_state_machine()
    attributes = {"api": api, "role": role, "findings": findings, "followed": followed, "scenarios": []}
    return type(f"{role.title()}Workflow", (_Calls, base), attributes)


def explore(machine: type[APIStateMachine], scenarios: int) -> None:
    """Runs `scenarios` scenarios. Hypothesis replays prefixes of earlier scenarios, but the server has moved on
    (a list holds other ids, a referral changed state), and it then stops with `Flaky`; as Schemathesis's own
    engine does, that ends one exploration, not the test, and the next one goes on until the budget is spent."""
    started: list[int] = machine.scenarios  # type: ignore[attr-defined]
    for _ in range(10):
        remaining = scenarios - len(started)
        if remaining <= 0:
            return
        try:
            machine.run(settings=_settings(remaining, stateful_step_count=6))
            return
        except Flaky:
            continue


@pytest.mark.parametrize("role", [r for r in ROLES if r != "anonymous"])
async def test_linked_operations_keep_answering_as_documented(api: Api, role: Role) -> None:
    """Sequences of calls where each step uses what an earlier answer returned (ids from lists and creations)."""
    findings, followed = api.findings(role), list[tuple[str, int]]()
    machine = state_machine(api, role, findings, followed)
    # Which links get drawn is luck (an enterprise's few 2xx links among many 403s): retry with more, bounded.
    for budget in (SCENARIOS * n for n in range(1, 6)):
        explore(machine, budget)
        if any(status < 300 for _, status in followed):
            break
    await _assert_still_serving(api)
    findings.assert_none()
    succeeded = sorted({link for link, status in followed if status < 300})
    print("links followed to a 2xx answer:", *succeeded, sep="\n  ")
    assert succeeded, f"no link was followed to a 2xx answer as {role}: {sorted(set(followed))}"
