"""What a merchant sells: products, their stock, and promo codes."""
