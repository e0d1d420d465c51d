"""Provisioners: what creates the thing a customer bought (a game server, an account)."""
