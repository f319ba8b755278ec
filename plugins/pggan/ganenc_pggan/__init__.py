"""ganenc plugin: see plugin.py for what it registers."""
