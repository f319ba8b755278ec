"""The ``ganenc`` command line."""
