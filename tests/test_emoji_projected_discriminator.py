"""The emoji GAN script's Projected-GAN discriminator: frozen classifier, trainable heads."""

from __future__ import annotations

import torch

from ganenc.emoji.classifier import EmojiCNN


def test_only_the_heads_learn_and_the_classifier_stays_frozen_in_eval_mode(emoji_gan_script):
    torch.manual_seed(0)
    classifier = EmojiCNN().eval().requires_grad_(False)
    frozen = {k: v.clone() for k, v in classifier.state_dict().items()}
    projected = emoji_gan_script.ProjectedDiscriminator(classifier).train()
    assert not classifier.training  # batch-norm statistics are never updated
    trainable = [name for name, p in projected.named_parameters() if p.requires_grad]
    assert trainable and all(name.startswith("heads.") for name in trainable)

    images = (torch.rand(4, 3, 64, 64) * 2 - 1).requires_grad_(True)
    logits = projected(images)
    assert logits.shape == (4,) and torch.isfinite(logits).all()
    (grad,) = torch.autograd.grad(logits.sum(), images, retain_graph=True)
    assert grad.abs().sum() > 0  # the generator is trained through the frozen features

    optimizer = torch.optim.Adam([p for p in projected.parameters() if p.requires_grad], lr=0.01)
    heads_before = [p.detach().clone() for p in projected.heads.parameters()]
    torch.nn.functional.softplus(-logits).mean().backward()
    optimizer.step()
    assert any(
        not torch.equal(a, b)
        for a, b in zip(heads_before, projected.heads.parameters(), strict=True)
    )
    for key, value in classifier.state_dict().items():
        assert torch.equal(value, frozen[key]), key
