"""Hook implementations of this plugin: registrations only, no torch import here."""

from __future__ import annotations

from ganenc import hookimpl
