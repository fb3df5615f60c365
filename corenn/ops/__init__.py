"""Differentiable operations: one Function class per op plus its lower-case function."""
