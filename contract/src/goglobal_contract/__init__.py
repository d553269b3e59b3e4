"""The GoGlobal wire contract: what travels between the services and to partners, and nothing that runs them.

- `envelope`: the CloudEvents 1.0 envelope over Kafka (binary mode) and as webhook bodies (structured mode);
- `registry`: every event type by CloudEvents `type` (`PAYLOADS`), what consumers validate against;
- `events`, `notification_events`, `partner_events` (on `event_base`): the typed payloads;
- `enums`, `identifiers`, `markets`, `sectors`: the code lists and validated identifiers the payloads use;
- `ids`: time-ordered identifiers; `state_machine`: the referral lifecycle.

Depends on pydantic, cloudevents and the pure code-list libraries only, so a partner's consumer can install it
alone (`pip install ./contract`). The services' runtime lives in `goglobal_shared`.
"""
