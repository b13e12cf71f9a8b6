"""The package version, importable from any layer without importing ``netfield`` itself."""

__version__ = "0.1.0"
