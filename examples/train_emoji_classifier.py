"""Train ``features:emoji-cnn``, the emoji classifier behind Grad-CAM and the emoji FID/KID.

Supervised on the *train* split of the Noto emoji data set: the Unicode group
(cross-entropy, classes weighted by inverse square-root frequency because People &
Body holds 59% of the images) plus the binary attributes of ``labels.csv``
(binary cross-entropy).  Augmentation: random shifts of up to 6 px on white and
small scale changes (no flips or colour changes: skin tone is an attribute).
Writes the fp16 state dict and ``metrics.json`` (held-out accuracy) to ``--out``.

    python examples/train_emoji_classifier.py --data ../shared/data/emoji --out runs/emoji-cnn
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ganenc.emoji import ATTRIBUTES, GROUPS, load_split
from ganenc.emoji.classifier import WEIGHTS_FILE, EmojiCNN, normalise
from ganenc.files import torch_save, write_json
from ganenc.scripts import check_outputs, one_line_errors, positive_float, positive_int


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random scale (0.85-1.1) and shift (+-6 px) of [N,3,64,64] inputs, white outside."""
    n = x.shape[0]
    scale = torch.empty(n).uniform_(0.85, 1.1, generator=generator)
    shift = torch.empty(n, 2).uniform_(-6 / 32, 6 / 32, generator=generator)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    white = (1 - x.new_tensor([0.485, 0.456, 0.406])) / x.new_tensor([0.229, 0.224, 0.225])
    out = F.grid_sample(x - white.view(1, 3, 1, 1), grid, align_corners=False, padding_mode="zeros")
    return out + white.view(1, 3, 1, 1)


@torch.no_grad()
def evaluate(network: EmojiCNN, split) -> dict:
    network.eval()
    x = normalise(split.images)
    logits = torch.cat([network(chunk) for chunk in x.split(256)])
    attributes = torch.cat([network.attribute_logits(chunk) for chunk in x.split(256)])
    predicted = logits.argmax(1)
    correct = predicted == split.groups
    per_class = [
        correct[split.groups == k].float().mean().item()
        for k in range(len(GROUPS))
        if (split.groups == k).any()
    ]
    attribute_accuracy = ((attributes > 0).float() == split.attributes).float().mean(0)
    return {
        "accuracy": correct.float().mean().item(),
        "balanced_accuracy": sum(per_class) / len(per_class),
        "chance_accuracy": torch.bincount(split.groups).max().item() / len(split.groups),
        "attribute_accuracy": dict(zip(ATTRIBUTES, attribute_accuracy.tolist(), strict=True)),
        "images": len(split.groups),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/emoji"))
    parser.add_argument("--out", type=Path, default=Path("runs/emoji-cnn"))
    parser.add_argument("--epochs", type=positive_int, default=24)
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--lr", type=positive_float, default=3e-3)
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--force", action="store_true", help="replace the weights and metrics already in --out"
    )
    args = parser.parse_args()
    # before minutes of training: an occupied or unwritable --out fails now, not at the end
    path, metrics_path = check_outputs(parser, args.out, [WEIGHTS_FILE, "metrics.json"], args.force)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    started = time.time()
    with one_line_errors(parser):
        train, heldout = load_split(args.data, "train"), load_split(args.data, "heldout")
    if args.batch_size > len(train.groups):
        parser.error(
            f"--batch-size {args.batch_size} is larger than the train split"
            f" ({len(train.groups)} images)"
        )
    x_train = normalise(train.images)
    counts = torch.bincount(train.groups, minlength=len(GROUPS)).float()
    class_weights = counts.clamp_min(1).rsqrt()
    class_weights = class_weights / (class_weights * counts).sum() * counts.sum()

    network = EmojiCNN()
    optimizer = torch.optim.AdamW(network.parameters(), lr=args.lr, weight_decay=5e-4)
    steps_per_epoch = len(x_train) // args.batch_size
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, args.lr, total_steps=args.epochs * steps_per_epoch
    )
    for epoch in range(args.epochs):
        network.train()
        order = torch.randperm(len(x_train), generator=generator)
        total = 0.0
        for i in range(steps_per_epoch):
            index = order[i * args.batch_size : (i + 1) * args.batch_size]
            x = augment(x_train[index], generator)
            embedding = network.embed(x)
            loss = F.cross_entropy(
                network.groups(network.dropout(embedding)), train.groups[index], class_weights
            ) + 0.5 * F.binary_cross_entropy_with_logits(
                network.attributes(embedding), train.attributes[index]
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item()
        held = evaluate(network, heldout)
        print(
            f"epoch {epoch + 1}/{args.epochs}  loss {total / steps_per_epoch:.3f}"
            f"  held-out accuracy {held['accuracy']:.3f}"
            f" (balanced {held['balanced_accuracy']:.3f})  {time.time() - started:.0f} s",
            flush=True,
        )
    torch_save(
        {k: v.half() if v.is_floating_point() else v for k, v in network.state_dict().items()}, path
    )
    metrics = {
        "heldout": evaluate(network, heldout),
        "train": evaluate(network, train),
        "seconds": round(time.time() - started, 1),
        "command": "python examples/train_emoji_classifier.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "force"),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "bytes": path.stat().st_size,
    }
    write_json(metrics_path, metrics)
    print(json.dumps(metrics["heldout"], indent=2))
    print(f"wrote {path} ({metrics['bytes'] / 1e6:.2f} MB, sha256 {metrics['sha256']})")


if __name__ == "__main__":
    main()
