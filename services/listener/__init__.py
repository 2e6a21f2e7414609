"""tumorsearch listener."""
