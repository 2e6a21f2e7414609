"""tumorsearch train / evaluate: the model commands (import torch)."""
