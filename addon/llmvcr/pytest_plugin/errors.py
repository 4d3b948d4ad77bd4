"""The plugin's own failure, importable without loading the proxy machinery."""

from __future__ import annotations


class PluginError(Exception):
    """One line for the user: what went wrong and how to fix it."""
