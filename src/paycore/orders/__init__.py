"""Orders: the state machine, reads for the merchant API, cancel, expiry."""
