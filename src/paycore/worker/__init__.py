"""The background worker: periodic jobs under leases (and, later, the outbox)."""
