"""genda."""
