"""Layers: Module and its subclasses."""
