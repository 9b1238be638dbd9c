"""ember's version (one place; the package, artifacts and generated code report it)."""

__version__ = "0.1.0"
