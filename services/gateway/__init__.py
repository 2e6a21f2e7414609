"""tumorsearch gateway."""
