"""Write a trained encoder run as the shipped ``encoder:stylegan2-emoji-64`` file (fp16 weights).

fp16 storage halves the file (the encoder loads it back into fp32); the
training settings and generator tag it records stay as they are.  Prints the
sha256 to put in ``EMOJI_64_ENCODER_SHA256`` (``ganenc_stylegan/weights.py``).

    python examples/ship_emoji_encoder.py runs/emoji-encoder
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import torch

from ganenc.encoder_runs import encoder_file
from ganenc.encoders import read_encoder_checkpoint
from ganenc_stylegan.weights import EMOJI_64_ENCODER

if __name__ == "__main__":
    payload = read_encoder_checkpoint(encoder_file(sys.argv[1]))
    payload["state_dict"] = {
        k: v.half() if v.is_floating_point() else v for k, v in payload["state_dict"].items()
    }
    payload.pop("optimizer", None)
    target = Path(__file__).parents[1] / "plugins/stylegan/ganenc_stylegan/assets"
    path = target / EMOJI_64_ENCODER.files[0].filename
    torch.save(payload, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB), sha256 {digest}")
