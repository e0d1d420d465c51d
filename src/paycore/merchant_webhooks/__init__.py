"""Outgoing webhooks to the merchant, per Standard Webhooks: endpoints, signing, delivery attempts."""
