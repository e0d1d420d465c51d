"""The audit log: who changed what, when, from where, under which request."""
