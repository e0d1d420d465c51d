"""The sandbox payment provider's own side: hosted pay page, payments, refunds, webhook sender.

It plays an external provider: it keeps its own records (`sandbox_*` tables), signs and sends
webhooks over real HTTP to paycore's webhook endpoint, and answers status queries. paycore's
adapter (`payments/providers/sandbox.py`) talks to it as it would to Stripe.
"""
