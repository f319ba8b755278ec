"""Resume is robust (issue 18, item 5): interrupts stop at a step boundary."""

from __future__ import annotations

import os
import signal

import pytest
import torch
from training_helpers import tiny_train_settings

from ganenc.errors import GanencError
from ganenc.training.pretrain import Pretrainer, pretrain


def _weights(run):
    return torch.load(run / "encoder.pt", weights_only=True)["state_dict"]


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_inside_a_step_checkpoints_at_the_step_boundary(tmp_path, signum):
    """Interrupted-and-resumed equals uninterrupted, bit for bit (periodic checkpoints do too)."""
    straight = pretrain(tiny_train_settings(tmp_path / "straight", iterations=5))
    trainer = Pretrainer(tiny_train_settings(tmp_path / "run", iterations=5, checkpoint_every=100))
    encoder_forward = trainer.model.forward

    def forward_then_signal(*args, **kwargs):  # the encoder's noise is drawn: mid-step
        out = encoder_forward(*args, **kwargs)
        if trainer.step == 2:
            os.kill(os.getpid(), signum)
        return out

    trainer.model.forward = forward_then_signal
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(GanencError, match="interrupted at step 3; .*--resume"):
        trainer.fit()
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    resumed = pretrain(tiny_train_settings(tmp_path / "run", iterations=5, resume=True))
    assert _same(_weights(straight), _weights(resumed))
