import pytest

from simple_ijepa.config import validate
from simple_ijepa.errors import ConfigError
from simple_ijepa.training.trainer import make_config


def test_defaults_match_the_readme():
    cfg = make_config()
    assert cfg.variant == "baseline"
    m = cfg.model
    assert (m.image_size, m.patch_size, m.hidden_dim, m.depth, m.heads) == (96, 8, 512, 6, 6)
    assert (m.predictor_depth, m.predictor_heads, m.num_targets) == (6, 6, 4)
    assert (m.lambda_gates, m.gate_exp_alpha, m.gate_layer_index, m.gate_location) == (1.0, 4.0, None, "post")
    assert (m.gate_beta, m.gate_gamma, m.gate_zeta) == (pytest.approx(2 / 3), -0.1, 1.1)
    assert (cfg.data.dataset_path, cfg.data.dataset_name) == ("./data", "stl10")
    o = cfg.optim
    assert (o.num_epochs, o.learning_rate, o.weight_decay, o.fp16_precision) == (100, 3e-4, 1e-5, True)
    assert (cfg.dataloader.batch_size, cfg.dataloader.num_workers) == (1024, 8)
    e = cfg.ema
    assert (e.gamma, e.update_gamma_after_step, e.update_gamma_every_n_steps) == (0.996, 1, 1)
    lg = cfg.logging
    assert (lg.save_model_dir, lg.log_every_n_steps, lg.ckpt_path) == ("./models", 98, None)
    assert cfg.debug.save_debug_masks is False
    validate(cfg)


@pytest.mark.parametrize("override,key", [
    ("variant=gatd", "variant"),
    ("data.dataset_name=imagenet", "data.dataset_name"),
    ("model.image_size=100", "model.image_size"),
    ("mask.target_scale=[0.1,1.5]", "mask.target_scale"),
    ("mask.context_scale=[0.0,1.0]", "mask.context_scale"),
    ("model.num_targets=40", "model.num_targets"),
    ("mask.kind=grid", "mask.kind"),
    ("mask.kind=random model.num_targets=6", "model.num_targets"),
    ("model.gate_layer_index=6", "model.gate_layer_index"),
    ("model.gate_location=pre", "model.gate_location"),
    ("optim.precision=fp8", "optim.precision"),
    ("ema.gamma=1.5", "ema.gamma"),
    ("model.loss=l1", "model.loss"),
    ("dataloader.batch_size=0", "dataloader.batch_size"),
])
def test_invalid_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match=f"`{key}`"):
        validate(make_config(override.split()))


def test_unknown_key_and_wrong_type_are_rejected():
    with pytest.raises(Exception, match="not_a_key"):
        make_config(["model.not_a_key=1"])
    with pytest.raises(Exception, match="image_size"):
        make_config(["model.image_size=big"])
