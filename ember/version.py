"""ember's version, in a module that imports nothing (the package, artifacts and generated
code report it)."""

__version__ = "0.1.0"
