"""Customers, and what each has spent."""
