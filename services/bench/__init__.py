"""tumorsearch bench."""
