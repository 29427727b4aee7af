"""Ways to use flexsync from existing PyTorch code."""
