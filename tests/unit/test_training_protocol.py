"""Training-protocol pieces: EMA of weights, learning-rate schedule, step-based stopping, L2-SP."""

import math

import pytest
import torch
from synthetic import synthetic_dataset

from metamlip.data import fit_self_energies
from metamlip.data.batching import GraphSet
from metamlip.nn.build import build_potential
from metamlip.train.anchor import WeightAnchor
from metamlip.nn.checkpoint import read_checkpoint
from metamlip.train.config import TrainingConfig
from metamlip.train.ema import WeightAverage
from metamlip.train.schedule import LearningRateSchedule
from metamlip.train.trainer import Trainer

ARCH = {"n_features": 8, "n_sensitivities": 4, "n_interactions": 1, "n_atom_layers": 2, "cutoff": 4.0, "soft_min": 0.75, "soft_max": 3.5}


def test_ema_follows_the_exponential_average_with_warm_up():
    weight = torch.nn.Parameter(torch.zeros(3))
    average = WeightAverage([weight], decay=0.9)
    expected = torch.zeros(3)
    for n in range(1, 40):
        with torch.no_grad():
            weight.fill_(float(n))
        average.update()
        d = min(0.9, (1 + n) / (10 + n))  # n counts this update (as torch-ema)
        expected = d * expected + (1 - d) * n
        torch.testing.assert_close(average.average[0], expected)
    with average.applied():
        torch.testing.assert_close(weight.detach(), expected)
    assert float(weight.detach()[0]) == 39.0  # the trained weights come back


def test_ema_state_round_trip_and_bad_decay():
    weight = torch.nn.Parameter(torch.randn(4))
    average = WeightAverage([weight], decay=0.99)
    for _ in range(5):
        with torch.no_grad():
            weight.add_(1.0)
        average.update()
    copy = WeightAverage([weight], decay=0.5)
    copy.load_state_dict(average.state_dict())
    assert copy.updates == 5 and copy.decay == 0.99
    torch.testing.assert_close(copy.average[0], average.average[0])
    with pytest.raises(ValueError, match="decay"):
        WeightAverage([weight], decay=1.0)


def _optimizer():
    return torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)


def test_warm_up_then_cosine_reaches_min_lr():
    opt = _optimizer()
    schedule = LearningRateSchedule(opt, 1e-3, "cosine", warmup_steps=10, min_lr=1e-5, total_steps=110)
    rates = []
    for step in range(1, 111):
        schedule.set_step(step)
        rates.append(opt.param_groups[0]["lr"])
    assert rates[0] == pytest.approx(1e-4)  # 1/10 of the rate at the first step
    assert rates[9] == pytest.approx(1e-3)
    assert rates[59] == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5, rel=1e-6)  # halfway
    assert rates[-1] == pytest.approx(1e-5)
    assert all(a >= b for a, b in zip(rates[9:], rates[10:]))


def test_plateau_cuts_after_patience_and_keeps_min_lr():
    opt = _optimizer()
    schedule = LearningRateSchedule(opt, 1e-3, "plateau", lr_factor=0.5, lr_patience=2, min_lr=3e-4)
    for loss in (1.0, 0.9, 0.95, 0.95):
        schedule.validated(loss)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3)  # 2 bad validations: not yet
    schedule.validated(0.95)
    assert opt.param_groups[0]["lr"] == pytest.approx(5e-4)
    for _ in range(9):
        schedule.validated(2.0)
    assert opt.param_groups[0]["lr"] == pytest.approx(3e-4)
    restored = LearningRateSchedule(_optimizer(), 1e-3, "plateau", lr_factor=0.5, lr_patience=2, min_lr=3e-4)
    restored.load_state_dict(schedule.state_dict())
    assert restored.optimizer.param_groups[0]["lr"] == pytest.approx(3e-4)
    with pytest.raises(ValueError, match="total"):
        LearningRateSchedule(opt, 1e-3, "cosine")


def test_anchor_adds_the_l2sp_gradient_before_each_step():
    weight = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = torch.optim.SGD([weight], lr=0.1)
    anchor = WeightAnchor([weight], strength=2.0).attach(opt)
    with torch.no_grad():
        weight.add_(torch.tensor([0.5, 0.5]))  # moved away from w0
    weight.grad = torch.zeros(2)
    opt.step()  # gradient 2 * (w - w0) = [1, 1]
    torch.testing.assert_close(weight.detach(), torch.tensor([1.4, -1.6]))
    assert anchor.penalty() == pytest.approx(0.5 * 2.0 * 2 * 0.4**2)


def _trainer(tmp_path, head_steps=0, **settings):
    data = synthetic_dataset(12, seed=3)
    species = [1, 6, 7, 8]
    level = data[0].level
    torch.manual_seed(0)
    potential = build_potential(ARCH, species, [level], torch.from_numpy(fit_self_energies(data, species)[level])[None])
    settings = TrainingConfig(**{"batch_size": 4, "progress": False, "checkpoint_every": 1000, **settings})
    train = GraphSet(data.configurations[:8], ARCH["cutoff"])
    val = GraphSet(data.configurations[8:16], ARCH["cutoff"])
    return Trainer(potential, train, val, settings, tmp_path, {}, head_steps=head_steps)


def test_head_steps_train_the_heads_alone_then_every_weight(tmp_path):
    """With the op library's pair sums (the default): the frozen body's sensitivities stay on the
    twice-differentiable path that training on forces needs."""
    trainer = _trainer(tmp_path, head_steps=3, max_steps=3, ema_decay=None, warmup_steps=0)
    heads = {id(p) for p in trainer.potential.hipnn.head_parameters()}
    start = {id(p): p.detach().clone() for p in trainer.parameters}
    trainer.fit()  # 3 steps, all in the heads-only phase
    moved = {id(p) for p in trainer.parameters if not torch.equal(p.detach(), start[id(p)])}
    assert moved == heads
    assert all(id(p) in heads for p in trainer.optimizer.state)  # no Adam state for the frozen body

    later = _trainer(tmp_path / "later", head_steps=2, max_steps=4, ema_decay=None, warmup_steps=0)
    body_start = [p.detach().clone() for p in later.body]
    later.fit()  # steps 3 and 4 train the body too
    assert all(not torch.equal(p.detach(), w0) for p, w0 in zip(later.body, body_start))


def test_freeze_body_trains_the_heads_for_every_step(tmp_path):
    from metamlip.train.config import config_from_dict
    from metamlip.train.run import trainer_for

    reference = _trainer(tmp_path / "ref", max_steps=2)
    config = config_from_dict({"init": "x.ckpt", "finetune": {"freeze_body": True, "max_steps": 2}, "training": {"progress": False}})
    trainer = trainer_for(config, reference.potential, reference.train_set, reference.val_set, tmp_path / "frozen")
    body_start = [p.detach().clone() for p in trainer.body]
    trainer.fit()
    assert trainer.state.global_step == 2 and all(torch.equal(p.detach(), w0) for p, w0 in zip(trainer.body, body_start))
    assert trainer_for(config_from_dict({"finetune": {"freeze_body": True}}), reference.potential, reference.train_set, reference.val_set, tmp_path / "s").head_steps == 0


def test_head_steps_is_a_finetune_key(tmp_path):
    from metamlip.train.config import ConfigError, config_from_dict

    assert config_from_dict({}).finetune.head_steps == 0
    with pytest.raises(ConfigError, match="finetune.head_steps"):
        config_from_dict({"finetune": {"head_steps": -1}})


def test_max_steps_stops_mid_epoch(tmp_path):
    trainer = _trainer(tmp_path, max_steps=5, max_epochs=50)
    trainer.fit()
    assert trainer.state.global_step == 5
    assert trainer.state.epoch == 3  # 2 + 2 + 1 steps; the partial epoch is validated too
    assert len(trainer.state.log) == 3


def test_patience_in_steps(tmp_path):
    trainer = _trainer(tmp_path, patience_steps=6, learning_rate=1e-9, max_epochs=100)
    trainer.fit()  # a rate this small never improves after the first epoch
    state = trainer.state
    assert state.stopped_early and state.global_step - state.best_step >= 6 and state.global_step <= state.best_step + 8


def test_ema_weights_are_validated_and_saved(tmp_path):
    trainer = _trainer(tmp_path, ema_decay=0.9, max_epochs=1)
    trained = [p.detach().clone() for p in trainer.parameters]
    trainer.fit()  # one epoch: its validation is the best, with the averaged weights
    saved = read_checkpoint(tmp_path / "model.ckpt")["model"]["state_dict"]
    ema = read_checkpoint(tmp_path / "last.ckpt")["training_state"]["ema"]
    assert ema["updates"] == 2
    names = [name for name, p in trainer.potential.named_parameters() if p.requires_grad]
    moved = 0
    for name, average, start in zip(names, ema["average"], trained):
        torch.testing.assert_close(saved[name], average)
        moved += int(not torch.equal(average, start))
    assert moved > 0


@pytest.mark.parametrize(
    "training, message",
    [
        ({"ema_decay": 1.0}, "training.ema_decay"),
        ({"schedule": "linear"}, "training.schedule"),
        ({"max_steps": None, "max_epochs": None}, "max_epochs and max_steps are both null"),
        ({"warmup_steps": -1}, "training.warmup_steps"),
        ({"patience_steps": 0}, "training.patience_steps"),
    ],
)
def test_bad_protocol_keys_name_the_key(training, message):
    from metamlip.train.config import ConfigError, config_from_dict

    with pytest.raises(ConfigError, match=message):
        config_from_dict({"training": training})


def test_pretraining_keeps_the_previous_protocol():
    from metamlip.train.config import config_from_dict

    config = config_from_dict({"pretrain": {"seed": 1}})
    assert (config.pretrain.batch_size, config.pretrain.schedule, config.pretrain.ema_decay, config.pretrain.max_steps) == (16, "plateau", None, None)
    assert (config.training.batch_size, config.training.schedule, config.training.ema_decay, config.training.max_steps) == (4, "cosine", 0.99, 6000)
    with pytest.raises(Exception, match="finetune.l2sp"):
        config_from_dict({"finetune": {"l2sp": -1.0}})


def test_finetuning_takes_the_rate_and_budget_of_the_finetune_section():
    from metamlip.train.config import config_from_dict
    from metamlip.train.run import training_settings

    config = config_from_dict({"training": {"learning_rate": 0.02}, "finetune": {"max_steps": 100}})
    scratch, tuned = training_settings(config, False), training_settings(config, True)
    assert (scratch.learning_rate, scratch.max_steps) == (0.02, 6000)
    assert (tuned.learning_rate, tuned.max_steps, tuned.schedule) == (3e-3, 100, "cosine")
    config = config_from_dict({"training": {"learning_rate": 0.02}, "finetune": {"learning_rate": None, "max_steps": None}})
    assert (training_settings(config, True).learning_rate, training_settings(config, True).max_steps) == (0.02, 6000)
