"""StyleGAN checkpoint files: one module per job, dependencies one way only.

- :mod:`.dispatch` decides a file's layout once and calls its reader; the only
  module the adapter and ``ganenc convert`` use;
- one module per layout: :mod:`.rosinality` (``.pt``), :mod:`.genforce`
  (StyleGAN2 ``.pth``), :mod:`.nvidia_state` (a bare state dict with NVIDIA's
  key names) and :mod:`.nvidia_pickle` (NVIDIA's ``.pkl``, whose ``G_ema`` is
  an NVIDIA state dict); StyleGAN1's genforce reader and StyleGAN3's NVIDIA
  reader live with their models (``stylegan1.py``, ``stylegan3.py``);
- :mod:`.keymaps`: the parameter-name maps between our model and each layout,
  and the two functions that apply a map;
- :mod:`.nvidia_unpickler`: the restricted unpickler, for NVIDIA pickles only.

Graph: dispatch -> nvidia_pickle -> nvidia_state -> keymaps; dispatch ->
rosinality/genforce -> keymaps; nvidia_pickle -> nvidia_unpickler.  This
package module imports nothing (no torch), so the names below are cheap to use.
"""

from __future__ import annotations

#: Families the StyleGAN plugin loads, with the name messages give each.
FAMILY_NAMES = {"stylegan2": "StyleGAN2", "stylegan1": "StyleGAN1", "stylegan3": "StyleGAN3"}

#: Layouts a StyleGAN2 generator can be written in (``ganenc convert --to``).
WRITE_LAYOUTS = ("rosinality", "nvidia-state-dict", "genforce")
