"""Intake's use cases, each once: the HTTP routes, the console and the event consumers call them.

A use case takes the stores it needs as ports (`ports`), the clock and the caller as parameters, and refuses with
the errors of `errors`, which each edge translates in one place (the HTTP app: `intake.api.errors`)."""
