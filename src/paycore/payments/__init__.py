"""Payment attempts, refunds, the webhook inbox, and the providers behind one protocol."""
