"""The package version, in one place (imported by the package and by saved manifests)."""

__version__ = "0.1.0"
