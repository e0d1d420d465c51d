"""Who is calling: API keys for the merchant and storefront APIs, and console users."""
