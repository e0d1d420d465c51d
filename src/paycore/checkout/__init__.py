"""Checkout: a cart becomes an order with a payment attempt; receipts for the storefront."""
