"""Tenants (merchants), plans and subscriptions."""
