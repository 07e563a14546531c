import pytest

from cvae.config import KLConfig, OptimConfig, TeacherForcingConfig
from cvae.schedules import kl_weight, lr_factor, teacher_forcing_ratio


def beta(cfg, epoch=0, step=0, epochs=100, steps_per_epoch=10):
    return kl_weight(cfg, epoch=epoch, step=step, epochs=epochs, steps_per_epoch=steps_per_epoch)


@pytest.mark.parametrize(("epoch", "expected"), [(0, 0.0), (1, 0.001), (250, 0.25), (999, 0.999), (1000, 1.0),
                                                 (5000, 1.0)])
def test_seed_rule_slope_per_epoch_capped_at_one(epoch, expected):
    cfg = KLConfig(schedule="monotonic", beta_start=0.0, beta_max=1.0, ramp=1000, unit="epoch")
    assert beta(cfg, epoch=epoch, epochs=6000) == pytest.approx(expected)


def test_monotonic_by_step_from_a_start():
    cfg = KLConfig(schedule="monotonic", beta_start=0.2, beta_max=0.6, ramp=40, unit="step")
    assert beta(cfg, step=0) == pytest.approx(0.2)
    assert beta(cfg, step=20) == pytest.approx(0.4)
    assert beta(cfg, step=400) == pytest.approx(0.6)


def test_constant():
    assert beta(KLConfig(schedule="constant", beta_max=0.3), epoch=57) == 0.3


@pytest.mark.parametrize(("epoch", "expected"), [(0, 0.0), (5, 0.5), (10, 1.0), (24, 1.0), (25, 0.0), (30, 0.5),
                                                 (99, 1.0)])
def test_cyclical_fu_et_al(epoch, expected):
    # 100 epochs, 4 cycles of 25, ramp over the first 40% (10 epochs) of each
    cfg = KLConfig(schedule="cyclical", beta_max=1.0, cycles=4, ratio=0.4, unit="epoch")
    assert beta(cfg, epoch=epoch) == pytest.approx(expected)


def test_cyclical_by_step():
    cfg = KLConfig(schedule="cyclical", beta_max=0.5, cycles=2, ratio=0.5, unit="step")
    # 10 epochs x 10 steps = 100 steps, cycles of 50, ramp 25 steps
    assert beta(cfg, step=0, epochs=10) == 0.0
    assert beta(cfg, step=12.5, epochs=10) == pytest.approx(0.25)
    assert beta(cfg, step=40, epochs=10) == pytest.approx(0.5)
    assert beta(cfg, step=50, epochs=10) == 0.0


def test_teacher_forcing():
    assert teacher_forcing_ratio(TeacherForcingConfig(schedule="constant", start=0.5), epoch=40) == 0.5
    linear = TeacherForcingConfig(schedule="linear", start=1.0, end=0.6, decay_epochs=10)
    assert teacher_forcing_ratio(linear, epoch=0) == 1.0
    assert teacher_forcing_ratio(linear, epoch=5) == pytest.approx(0.8)
    assert teacher_forcing_ratio(linear, epoch=50) == pytest.approx(0.6)


def test_cosine_lr_runs_from_one_to_lr_final():
    cfg = OptimConfig(lr=0.01, lr_schedule="cosine", lr_final=0.1)
    factors = [lr_factor(cfg, step=s, total_steps=11) for s in range(11)]
    assert factors[0] == pytest.approx(1.0) and factors[-1] == pytest.approx(0.1)
    assert factors[5] == pytest.approx(0.55)  # halfway: the mean of both ends
    assert all(a > b for a, b in zip(factors, factors[1:]))
    assert lr_factor(OptimConfig(), step=7, total_steps=11) == 1.0
