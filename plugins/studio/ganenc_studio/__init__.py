"""ganenc studio: invert and edit images in the browser, offline (see docs/studio.md).

``plugin.py`` adds the ``ganenc studio`` command; ``session.py`` holds what the
page works on (the :class:`~ganenc_studio.session.Studio`), ``app.py`` the web
application around it.  Nothing here imports torch until the command runs.
"""

#: The encoder ``ganenc studio`` opens when no ``--encoder`` is given: the packaged
#: pre-trained emoji encoder (a weights tag; ``ganenc weights list`` shows whether it is there).
DEFAULT_ENCODER = "encoder:stylegan2-emoji-64"
