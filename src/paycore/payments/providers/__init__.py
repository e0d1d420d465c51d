"""Payment providers behind one protocol (`base.PaymentProvider`), held in an explicit registry."""
