"""Checks of what deploys and runs the system rather than of its code: docker-compose, the Kubernetes manifests,
the alert rules (promtool), the local stack's ports and signals, the contract package installed alone. They need
no Kafka and no database; some need a tool the Makefile installs (promtool, uv) and skip, saying so, without it."""

from tests.support import no_infrastructure

infra = no_infrastructure("deploy")
