"""LiveClass: a self-hosted live-classroom server for schools."""

__version__ = "0.1.0"
