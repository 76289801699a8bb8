"""Naive but correct Triton kernels, with PyTorch references in `reference.py`."""
