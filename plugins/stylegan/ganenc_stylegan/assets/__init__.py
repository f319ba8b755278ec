"""Weights shipped with ganenc-stylegan (``stylegan2:emoji-64``)."""
