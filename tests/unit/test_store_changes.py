"""What a compare-and-set replacement writes (pure): the changed fields, the version after, every event still
pending plus the new ones, in order; and how a referral's id leads to its request's."""

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from goglobal_shared.store.aggregates import Change, _changed
from goglobal_shared.store.outbox import SEQ_PER_VERSION, outbox_entries
from intake.domain.service_requests import _new_request_ids, request_id_of
from tests.unit.test_envelope import submitted

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


@given(pending=st.integers(0, 4), new=st.integers(0, 4), version=st.integers(1, 50))
def test_a_change_keeps_the_pending_events_and_queues_its_own_after_them(pending: int, new: int, version: int) -> None:
    earlier = [submitted("r") for _ in range(pending)]
    current = {"_id": "r", "version": version, "n": 1, "outbox": outbox_entries(earlier, version)}
    events = [submitted("r") for _ in range(new)]
    written = _changed(current, Change({"n": 2, "at": NOW}, events))
    assert written["version"] == version + 1 and written["n"] == 2 and written["at"] == NOW
    assert written["outbox_count"] == len(written["outbox"]) == pending + new
    in_order = sorted(written["outbox"].values(), key=lambda entry: entry["seq"])
    assert [entry["id"] for entry in in_order] == [e.id for e in [*earlier, *events]]
    assert all(entry["seq"] >= (version + 1) * SEQ_PER_VERSION for entry in in_order[pending:])


def test_a_change_removes_and_appends_what_it_names() -> None:
    current = {"_id": "p", "version": 3, "next_deadline": NOW, "audit": [{"at": NOW}], "outbox": {}}
    written = _changed(current, Change({}, unset=frozenset({"next_deadline"}), push={"audit": {"at": NOW, "n": 2}}))
    assert "next_deadline" not in written
    assert written["audit"] == [{"at": NOW}, {"at": NOW, "n": 2}]
    assert current["audit"] == [{"at": NOW}]  # the document as read is left alone


@given(count=st.integers(1, 255))
def test_every_referral_id_leads_to_its_request(count: int) -> None:
    request_id, referral_ids = _new_request_ids(count)
    assert len(set(referral_ids)) == count and request_id not in referral_ids
    assert all(request_id_of(referral_id) == request_id for referral_id in referral_ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in [request_id, *referral_ids])


def test_requests_made_one_after_the_other_get_ids_in_that_order() -> None:
    """Lists page by `_id`, newest first: ids follow creation time."""
    first, _ = _new_request_ids(1)
    second, _ = _new_request_ids(1)
    assert first < second
