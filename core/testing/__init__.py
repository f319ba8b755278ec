"""Helpers for plugin authors and for ganenc's own tests."""
