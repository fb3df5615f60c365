"""Reading and writing network files."""

from pgm.io.bif import read_bif, write_bif

__all__ = ["read_bif", "write_bif"]
