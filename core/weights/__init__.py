"""The model zoo: pretrained weights named by tags, downloaded once, verified, cached.

A tag is ``family:name``, e.g. ``stylegan2:ffhq-1024`` or ``features:vgg16``.
Plugins contribute tags through the ``register_weights`` hook; each is a
:class:`WeightsEntry` listing its file(s), their download URLs (mirrors, tried in
order), the file format, the architecture the file must produce, its licence and
its source.  ``ganenc.load_generator("stylegan2", "stylegan2:ffhq-1024")`` and
``--checkpoint stylegan2:ffhq-1024`` turn a tag into a local file through
:func:`resolve_checkpoint`; strings that are not tags (paths) pass unchanged.

Where files live:

- generator weights: ``$GANENC_HOME/weights/<family>/<name>/<file>`` (``GANENC_HOME``
  defaults to the user's cache folder, e.g. ``~/.cache/ganenc``);
- feature networks (``cache="torch-hub"``): torch's hub cache,
  ``$TORCH_HOME/hub/checkpoints/<file>``, so weights that torchvision, pytorch-fid
  or torch-fidelity already fetched are found and vice versa;
- weights shipped inside a distribution (``cache="package"``, e.g. the emoji
  models): the folder of the importable package ``package``.  They are never
  downloaded; their full sha256 is known, ``verify`` checks it and never deletes
  them (a mismatch means a broken install: reinstall the distribution).

Downloads use only the standard library (``urllib``): a socket timeout, retries
with back-off, ``HTTP Range`` resumption of ``<file>.part``, an atomic rename, a
lock against concurrent processes (DDP ranks), a rich progress bar on terminals,
and a sha256 check.  Where no published hash exists (the torch.hub file-name
prefix ``name-<sha256 prefix>.ext`` counts as one), the digest is recorded at first
download in ``$GANENC_HOME/weights/sha256.json`` and the user is told; later
downloads and ``ganenc weights verify`` are checked against it.  A download that
fails its check is deleted, never kept; so is a cached file that fails a published
hash (one that differs only from a recorded hash is reported and kept).  A web
page instead of the file is refused.  Nothing is downloaded at import time, and
``GANENC_OFFLINE=1`` forbids downloads (cached files still work).  When a file
cannot be fetched, one :class:`WeightsDownloadError` names each URL and the exact
path at which to place the file by hand.

The package, one job per module (this one re-exports their public names):

- :mod:`~ganenc.weights.entries`: :class:`WeightsFile`, :class:`WeightsEntry`, tags and
  their lookup in the registry;
- :mod:`~ganenc.weights.cache`: where files live (homes, folders, cache status, the lock);
- :mod:`~ganenc.weights.records`: the recorded sha256 digests and :func:`sha256_of`;
- :mod:`~ganenc.weights.download`: one file over HTTP (mirrors, retries, resume,
  progress) and the environment settings;
- :mod:`~ganenc.weights.resolve`: :func:`fetch`, :func:`verify` and the generator
  checkpoints (:func:`resolve_checkpoint`, :func:`check_architecture`).

Each imports only those above it in that list (``entries`` reaches ``cache`` and
``records`` lazily, for :meth:`WeightsEntry.summary`).  Nothing here imports
torch or rich at import time.
"""

from .cache import (
    HOME_ENV,
    LOCK_SUFFIX,
    PART_SUFFIX,
    cache_status,
    cached_path,
    default_cache_home,
    file_path,
    find_file,
    ganenc_home,
    local_path,
    package_dir,
    torch_hub_checkpoint_dir,
    weights_dir,
)
from .download import (
    DEFAULT_DOWNLOAD_RETRIES,
    DEFAULT_DOWNLOAD_TIMEOUT,
    DOWNLOAD_RETRIES_ENV,
    DOWNLOAD_TIMEOUT_ENV,
    OFFLINE_ENV,
    RETRY_BACKOFF_SECONDS,
    Downloaded,
    WeightsDownloadError,
    WeightsHashError,
    download_file,
    download_retries,
    download_timeout,
    manual_instructions,
    offline,
)
from .entries import (
    TAG_RE,
    WeightsEntry,
    WeightsFile,
    entry_from_spec,
    is_tag,
    list_entries,
    register_entries,
    weights_entry,
)
from .records import (
    CHUNK_BYTES,
    HASHES_FILE,
    forget_hash,
    hashes_path,
    record_hash,
    recorded_hash,
    sha256_of,
)
from .resolve import (
    VerifyResult,
    check_architecture,
    fetch,
    generator_family,
    remember_download,
    resolve_checkpoint,
    resolve_checkpoint_entry,
    verify,
)

__all__ = [
    "CHUNK_BYTES",
    "DEFAULT_DOWNLOAD_RETRIES",
    "DEFAULT_DOWNLOAD_TIMEOUT",
    "DOWNLOAD_RETRIES_ENV",
    "DOWNLOAD_TIMEOUT_ENV",
    "HASHES_FILE",
    "HOME_ENV",
    "LOCK_SUFFIX",
    "OFFLINE_ENV",
    "PART_SUFFIX",
    "RETRY_BACKOFF_SECONDS",
    "TAG_RE",
    "Downloaded",
    "VerifyResult",
    "WeightsDownloadError",
    "WeightsEntry",
    "WeightsFile",
    "WeightsHashError",
    "cache_status",
    "cached_path",
    "check_architecture",
    "default_cache_home",
    "download_file",
    "download_retries",
    "download_timeout",
    "entry_from_spec",
    "fetch",
    "file_path",
    "find_file",
    "forget_hash",
    "ganenc_home",
    "generator_family",
    "hashes_path",
    "is_tag",
    "list_entries",
    "local_path",
    "manual_instructions",
    "offline",
    "package_dir",
    "record_hash",
    "recorded_hash",
    "register_entries",
    "remember_download",
    "resolve_checkpoint",
    "resolve_checkpoint_entry",
    "sha256_of",
    "torch_hub_checkpoint_dir",
    "verify",
    "weights_dir",
    "weights_entry",
]
