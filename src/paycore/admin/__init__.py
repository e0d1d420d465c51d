"""The admin console's sign-in: sessions, CSRF, lockout (the pages come later)."""
