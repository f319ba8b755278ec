#!/usr/bin/env bash
# End-to-end smoke of the commands on a GPU: train (bf16, interrupted and resumed),
# per-image fine-tuning (bf16), inversion with both refinements. Random 64 px
# generator, random VGG16 features: it checks the CUDA paths run, not quality.
#   bash benchmarks/cuda_smoke.sh [OUT]   (DEVICE=cpu PRECISION=fp32: a CPU dry run; PYTHON=...)
# OUT must be new, empty or an earlier smoke's (marked): a rerun replaces what it wrote there.
set -euo pipefail
OUT=${1:-runs/cuda-smoke}
DEVICE=${DEVICE:-cuda}
PRECISION=${PRECISION:-bf16}
G=(-O channel_max=64)
PARTS=(train photos finetune invert-optimize invert-finetune)
MARK=.ganenc-cuda-smoke
if [ -e "$OUT" ] && [ ! -e "$OUT/$MARK" ] && { [ ! -d "$OUT" ] || [ -n "$(ls -A "$OUT")" ]; }; then
    echo "error: $OUT holds files this smoke did not write; give a new or empty OUT (nothing was deleted)" >&2
    exit 2
fi
rm -rf "${PARTS[@]/#/$OUT/}"
mkdir -p "$OUT"
touch "$OUT/$MARK"
common=(--feature-weights random --device "$DEVICE" --no-progress)
ganenc train --gan stylegan2 --attention center --checkpoint random --resolution 64 "${G[@]}" \
    --encoder-option max_channels=64 --iterations 10 --batch-size 8 --val-samples 8 \
    --checkpoint-every 10 --precision "$PRECISION" --out "$OUT/train" "${common[@]}"
ganenc train --out "$OUT/train" --resume --iterations 20 --device "$DEVICE" --no-progress
"${PYTHON:-python3}" - "$OUT/train" <<'PY'
import json, sys
from pathlib import Path
run = Path(sys.argv[1])
steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
val = json.loads((run / "val.json").read_text())
print("train: last step", max(steps), "val", {k: v for k, v in val.items() if not isinstance(v, (dict, list))})
PY
"${PYTHON:-python3}" - "$OUT" <<'PY'
import sys
from pathlib import Path
import ganenc, torch
from ganenc.images import save_image
generator = ganenc.load_generator("stylegan2", resolution=64, channel_max=64)
folder = Path(sys.argv[1]) / "photos"
folder.mkdir(parents=True, exist_ok=True)
with torch.no_grad():
    images = generator.synthesize(generator.encoder_targets(generator.sample_latents(2, seed=7)))
for i, image in enumerate(images):
    save_image(image, folder / f"p{i}.png")
PY
ganenc finetune --encoder "$OUT/train" --images "$OUT/photos" --mode per-image --iterations 20 \
    --precision "$PRECISION" --out "$OUT/finetune" "${common[@]}"
for refine in optimize finetune; do
    ganenc invert --encoder "$OUT/train" --images "$OUT/photos" --refine $refine --steps 20 \
        --out "$OUT/invert-$refine" --device "$DEVICE" --feature-weights random
    cat "$OUT/invert-$refine/metrics.csv"
done
echo "cuda smoke: all commands finished on $DEVICE ($PRECISION)"
