"""The errors a user fixes in the configuration, raised at every layer (config.py re-exports
them): a layer below run/ names the setting without reading the configuration."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration problem, worded for the person who wrote the config."""


class PreflightError(ConfigError):
    """A configuration that is valid on its own but cannot work with this input, model or
    cluster (found before a run writes anything)."""
