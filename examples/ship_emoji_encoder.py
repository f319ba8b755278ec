"""Write a trained encoder run as the shipped ``encoder:stylegan2-emoji-64`` file (fp16 weights).

fp16 storage halves the file (the encoder loads it back into fp32); the
training settings and generator tag it records stay as they are.  Prints the
sha256 to put in ``EMOJI_64_ENCODER_SHA256`` (``ganenc_stylegan/weights.py``).  It replaces
the packaged file in this checkout (that is what it is for; git keeps the previous one).

    python examples/ship_emoji_encoder.py runs/emoji-encoder
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from ganenc.encoder_runs import encoder_file
from ganenc.encoders import read_encoder_checkpoint
from ganenc.files import torch_save
from ganenc.scripts import one_line_errors
from ganenc_stylegan.weights import EMOJI_64_ENCODER

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="the encoder training run (its --out folder) or its file")
    args = parser.parse_args()
    with one_line_errors(parser):
        payload = read_encoder_checkpoint(encoder_file(args.run))
    payload["state_dict"] = {
        k: v.half() if v.is_floating_point() else v for k, v in payload["state_dict"].items()
    }
    payload.pop("optimizer", None)
    target = Path(__file__).parents[1] / "plugins/stylegan/ganenc_stylegan/assets"
    path = target / EMOJI_64_ENCODER.files[0].filename
    torch_save(payload, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB), sha256 {digest}")
