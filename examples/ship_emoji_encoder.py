"""Write a trained encoder run as the shipped ``encoder:stylegan2-emoji-64`` file (fp16 weights).

fp16 storage halves the file (the encoder loads it back into fp32); the
training settings and generator tag it records stay as they are.  Prints the
sha256 to put in ``EMOJI_64_ENCODER_SHA256`` (``ganenc_stylegan/weights.py``).  It replaces
the packaged file in this checkout (that is what it is for; git keeps the previous one),
or writes ``--out`` instead.  Only an encoder trained for ``stylegan2:emoji-64`` (the
shipped generator, its geometry) is shipped under that name; any other is refused first.

    python examples/ship_emoji_encoder.py runs/emoji-encoder
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from ganenc.encoder_runs import encoder_file
from ganenc.encoders import read_encoder_checkpoint
from ganenc.errors import GanencError
from ganenc.files import check_output, torch_save
from ganenc.scripts import one_line_errors
from ganenc_stylegan.weights import EMOJI_64, EMOJI_64_ENCODER

PACKAGED = (
    Path(__file__).parents[1]
    / "plugins/stylegan/ganenc_stylegan/assets"
    / EMOJI_64_ENCODER.files[0].filename
)


def check_shippable(payload: dict, source: Path) -> None:
    """Raise unless the encoder was trained for the shipped generator, as it is shipped."""
    import ganenc
    from ganenc.inversion import geometry_mismatch

    recorded = payload.get("generator")
    wanted = {"gan": "stylegan2", "checkpoint": EMOJI_64.tag, "generator_options": {}}
    if not isinstance(recorded, dict) or any(recorded.get(k) != v for k, v in wanted.items()):
        if not isinstance(recorded, dict):
            found = "no recorded generator"
        else:
            found = f"{recorded.get('gan')} {recorded.get('checkpoint')}"
            if recorded.get("generator_options"):
                found += f" with options {recorded['generator_options']}"
        raise GanencError(
            f"{source} was trained for {found}, not {EMOJI_64.tag}: only an encoder of the shipped"
            f" generator may be shipped as {EMOJI_64_ENCODER.tag} (nothing was written)"
        )
    mismatch = geometry_mismatch(
        payload["geometry"], ganenc.load_generator("stylegan2", EMOJI_64.tag)
    )
    if mismatch:
        raise GanencError(f"{source}: {mismatch}; it cannot be shipped (nothing was written)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="the encoder training run (its --out folder) or its file")
    parser.add_argument(
        "--out",
        type=Path,
        help="write this file instead of the packaged one (refused if it exists, unless --force)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing --out file")
    args = parser.parse_args()
    with one_line_errors(parser):
        source = encoder_file(args.run)
        payload = read_encoder_checkpoint(source)
        check_shippable(payload, source)
        path = PACKAGED if args.out is None else check_output(args.out, force=args.force)
    payload["state_dict"] = {
        k: v.half() if v.is_floating_point() else v for k, v in payload["state_dict"].items()
    }
    payload.pop("optimizer", None)
    torch_save(payload, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB), sha256 {digest}")
