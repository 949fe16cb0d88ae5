"""Label inference attacks (DESIGN §4)."""
