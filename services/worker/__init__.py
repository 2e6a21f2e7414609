"""tumorsearch worker."""
