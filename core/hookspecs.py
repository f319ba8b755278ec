"""Hook specifications: the whole contract between the ganenc engine and its plugins.

A plugin is a module (or object) with functions decorated by ``ganenc.hookimpl``
whose names match the specs below.  It is found through the ``ganenc``
entry-point group::

    [project.entry-points.ganenc]
    my_cropper = "my_package.plugin"

Every ``register_*`` hook receives a ``register`` callable.  Call it once per
component::

    register(name, factory, description="...", options=OptionsModel, aliases=())

``factory`` is either a callable or a ``"module:attribute"`` string.  Strings are
imported only when the component is first created, so listing components,
``--help`` and ``--version`` never import torch.  ``options`` (a pydantic model,
or a ``"module:attribute"`` string naming one) validates the keyword options the
component is built with; ``create`` passes the validated fields to ``factory``
as keyword arguments.

The engine's own components (the built-in loss terms, for example) are
registered through these same hooks by the built-in plugin ``ganenc.builtins``.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("ganenc")
hookimpl = pluggy.HookimplMarker("ganenc")


@hookspec
def register_generators(register):
    """Register generator adapters: one per GAN family.

    ``factory(checkpoint=None, **options)`` returns a
    :class:`ganenc.adapters.GeneratorAdapter`.  ``checkpoint`` is a path (or
    ``None`` for a randomly initialised generator built from the options); the
    options model must declare it.
    Example: ``register("stylegan2", "ganenc_stylegan.adapter:load_stylegan2")``.
    """


@hookspec
def register_encoders(register):
    """Register encoder builders.

    ``factory(geometry, **options)`` returns a :class:`torch.nn.Module` whose
    ``forward(images, condition=None)`` returns the dict of latents described by
    ``geometry.encoder_latents``.  Pass ``generators=("stylegan1", ...)`` to
    ``register`` to declare which generator families the builder serves; the
    engine picks the builder from the generator's family with no list of GAN
    names of its own.
    """


@hookspec
def register_croppers(register):
    """Register attention croppers (AT1, AT2 boxes).

    ``factory(**options)`` returns an object with
    ``boxes(images) -> list[Tensor[N, 4]]`` (integer ``x0, y0, x1, y1`` per
    image, one tensor per attention level) for images ``[N, 3, H, W]`` in
    ``[-1, 1]``.  The engine's ``ganenc.cropping.crop_and_resize`` applies them.
    """


@hookspec
def register_losses(register):
    """Register loss terms.

    ``factory(**options)`` returns a :class:`torch.nn.Module` called as
    ``term(prediction, target) -> scalar tensor`` (lower is better).  Pass
    ``domain="image"`` or ``domain="latent"`` to ``register`` to say what the
    term compares.
    """


@hookspec
def register_weights(register):
    """Register pretrained weights under tags (the model zoo).

    The name is a tag ``family:name`` (the generator's registered name, or
    ``features`` for feature networks), e.g. ``stylegan2:ffhq-1024``; the
    factory is a :class:`ganenc.weights.WeightsEntry` (files, download URLs,
    sha256 where known, format, resolution, latent sizes, licence, source) or a
    ``"module:attribute"`` string naming one.  ``ganenc.weights.register_entries``
    registers a list of entries.  ``ganenc.load_generator(family, "family:name")``
    and ``--checkpoint family:name`` then download, verify and load the file.
    Keep entry modules free of torch: ``ganenc weights list`` imports them.
    """


@hookspec
def register_commands(cli):
    """Add commands to the ``ganenc`` command line.

    ``cli`` is the root :class:`click.Group`; add commands with
    ``cli.add_command(...)`` or ``@cli.command()``.  Import heavy modules
    inside the command functions, not at module level.  The core's own
    commands are added directly, not through this hook.
    """


@hookspec(firstresult=True)
def identify_checkpoint(checkpoint):
    """Say which GAN family a loaded checkpoint belongs to, or return ``None``.

    ``checkpoint`` is the object :func:`ganenc.checkpoints.read_checkpoint`
    returned (usually a dict).  A generator plugin recognises its own families'
    layouts and returns a :class:`ganenc.checkpoints.CheckpointIdentity`
    (``gan``: the registered generator name to load it with; ``description``:
    a short phrase for messages).  The first answer wins, so recognise only
    your own files.  The engine uses the answer to describe files and to tell a
    user who gave a file to the wrong ``--gan`` which family to use, without
    knowing any family itself.  Do not import torch at module level for it.
    """
