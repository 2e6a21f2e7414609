"""tumorsearch launcher."""
