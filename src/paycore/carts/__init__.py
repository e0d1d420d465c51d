"""Storefront carts."""
