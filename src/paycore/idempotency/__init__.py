"""Idempotency-Key: the first result of a POST is kept and replayed for its retries."""
