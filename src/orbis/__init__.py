"""Orbis: deploy virtual infrastructures described as code on one or several clouds."""

__version__ = "0.1.0"
