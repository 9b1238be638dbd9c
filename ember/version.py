"""The version of ember, in a module that imports nothing (code generation stamps it)."""

__version__ = "0.1.0"
