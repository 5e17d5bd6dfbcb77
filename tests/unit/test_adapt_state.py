"""An adaptable state (``NAME.adapt.npz``) written with settings since retired reads as a checkpoint with them would:
the bundled model's state from runs made while the backbone batch-norm fix was measured adapts as any other."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spokenword.inference.base import ModelError
from spokenword.training.adapt import _net, _State, read_state, write_state


def state(net_args: dict, **task_args) -> _State:
    hparams = {"net": {"class_path": "spokenword.models.SpeechEmbeddingCNN",
                       "init_args": {"num_classes": 3, "pretrained": "none", "input_size": [32, 80], **net_args}},
               "labels": ["a", "b", "c"], "sample_rate": 8000, **task_args}
    return _State(hparams, {"w": torch.zeros(2)}, 0.0, 1.0, np.zeros((2, 192), np.float32), np.zeros(2, np.int64),
                  np.array(["a", "a"]), name="m")


def test_a_state_with_retired_settings_at_todays_behaviour_reads_and_builds_its_network(tmp_path):
    path = write_state(tmp_path / "m.adapt.npz", state({"backbone_norm": "pretrained"}, teacher_weight=0.5))
    read = read_state(path)
    assert "backbone_norm" not in read.hparams["net"]["init_args"] and "teacher_weight" not in read.hparams
    assert _net(read.hparams, 4).head[-1].out_features == 4


def test_a_state_with_a_retired_setting_that_changed_the_model_is_refused_in_one_line(tmp_path):
    path = write_state(tmp_path / "m.adapt.npz", state({"backbone_norm": "training"}))
    with pytest.raises(ModelError, match=r"m.adapt.npz: trained with net.backbone_norm='training'") as err:
        read_state(path)
    assert "\n" not in str(err.value)
