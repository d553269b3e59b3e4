"""The unit tier: domain logic, adapters against fakes, rendering, settings; in-process, no Kafka, no database, no
service started, so it runs in seconds (`make test-unit`, and `make test-fast` with the other such tiers)."""

from tests.support import no_infrastructure

infra = no_infrastructure("unit")
