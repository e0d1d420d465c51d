"""Delivery channels: each a small module behind `base.Channel`."""
