import math

import pytest

from cm_cli.training.schedules import GrlSchedule, cosine_with_warmup


def test_cosine_warmup_rises_then_decays_to_floor():
    values = [cosine_with_warmup(s, warmup_steps=4, total_steps=20) for s in range(20)]
    assert values[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert values[4] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(values[4:], values[5:]))
    assert cosine_with_warmup(20, warmup_steps=4, total_steps=20) == pytest.approx(0.0)


def test_ganin_schedule_formula_and_warmup():
    sched = GrlSchedule("ganin", lambda_max=0.5, total_steps=110, warmup=10)
    assert sched(0) == 0.0 and sched(9) == 0.0
    p = 50 / 100
    assert sched(60) == pytest.approx(0.5 * (2 / (1 + math.exp(-10 * p)) - 1))
    assert sched(110) == pytest.approx(0.5 * (2 / (1 + math.exp(-10)) - 1))


def test_constant_and_linear():
    assert GrlSchedule("constant", lambda_max=0.3, total_steps=10)(0) == pytest.approx(0.3)
    lin = GrlSchedule("linear", lambda_max=1.0, total_steps=10)
    assert [lin(s) for s in (0, 5, 10, 20)] == pytest.approx([0.0, 0.5, 1.0, 1.0])
