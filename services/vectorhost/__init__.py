"""tumorsearch vectorhost."""
