"""Every persistence mechanic the services share, on MongoDB's own guarantees only: single-document atomic
updates, conditional updates as compare-and-set on a `version`, unique and secondary indexes on scalar fields.

No multi-document transactions, no change streams, no document locks. An aggregate's state and the events that
announce its changes are written in one document write (`Aggregates`, the embedded outbox); a relay publishes
and clears them in batches (`OutboxRelay`); consumers keep a log of the event ids they handled
(`ProcessedEvents`). Repositories keep only the mapping between documents and domain objects.

Every query shape used here is exercised against each supported server by `tests/contract`.
"""

from goglobal_shared.store.aggregates import Aggregates, ConcurrentUpdate
from goglobal_shared.store.outbox import OutboxRelay, RelayStatus
from goglobal_shared.store.processed import ProcessedEvents

__all__ = ["Aggregates", "ConcurrentUpdate", "OutboxRelay", "ProcessedEvents", "RelayStatus"]
