"""Deployers: one class per serving target behind the contract in ``base``."""
