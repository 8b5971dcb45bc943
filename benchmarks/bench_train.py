"""Step time of every training method / ERM's, for LFCC-LCNN on one pre-rendered augmented batch.

Goals (issue 24): SAM and ASAM <= 2.1x ERM (two forward/backward passes), CORAL, MMD,
GroupDRO and DANN <= 1.15x, OC-Softmax <= 1.05x cross-entropy. Every method is timed
through the run's own ``Stepper`` (backward + optimiser step, exactly what ``cm train``
does per step) on the same batch, rendered once (clean, A-law, telephone band: three
domain groups), methods interleaved over rounds to share machine noise; the figure is the
best round's median.
Usage: python benchmarks/bench_train.py [--batch 16] [--seconds 2] [--steps 20] [--rounds 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

CONDITIONS = ("clean", "alaw", "telephony")
# name -> (method, loss); the ratio's denominator is ERM with cross-entropy
VARIANTS = {
    "erm": ("erm", "ce"),
    "dann": ("dann", "ce"),
    "sam": ("sam", "ce"),
    "asam": ("asam", "ce"),
    "coral": ("coral", "ce"),
    "mmd": ("mmd", "ce"),
    "groupdro": ("groupdro", "ce"),
    "ocsoftmax": ("erm", "ocsoftmax"),
}
GOALS = {"sam": 2.1, "asam": 2.1, "coral": 1.15, "mmd": 1.15, "groupdro": 1.15, "dann": 1.15, "ocsoftmax": 1.05}


class _Batch:
    def __init__(self, waves, lengths):
        import torch

        self.waves, self.lengths = waves, lengths
        self.indices = torch.arange(len(waves))
        self.conditions = None

    def __len__(self) -> int:
        return len(self.waves)


def _batch(n: int, seconds: float, seed: int = 0):
    import pandas as pd
    import torch

    from cm_cli.degrade.policy import apply_policy

    rng = np.random.default_rng(seed)
    waves, domains = [], []
    for i in range(n):
        wave = (rng.standard_normal(int(seconds * 16000)) * 0.1).astype(np.float32)
        out, label = apply_policy(wave, 16000, CONDITIONS[i % 3], seed=i, utt_id=f"u{i}", cache=False)
        waves.append(out[: len(wave)])
        domains.append(label)
    x = torch.from_numpy(np.stack(waves))
    frame = pd.DataFrame(
        {
            "utt_id": [f"u{i}" for i in range(n)],
            "label": ["bonafide", "spoof"] * (n // 2) + ["spoof"] * (n % 2),
            "domain": domains,
        }
    )
    return _Batch(x, torch.full((n,), x.shape[1])), frame


def _stepper(name: str, frame):
    import torch

    from cm_cli.models.model import build_model
    from cm_cli.training.config import TrainConfig
    from cm_cli.training.data import TrainData
    from cm_cli.training.loop import build_model_config
    from cm_cli.training.methods.losses import criterion
    from cm_cli.training.state import TrainState
    from cm_cli.training.step import (
        Stepper,
        build_method,
        build_optimizer,
        method_modules,
        train_module,
    )

    method, loss = VARIANTS[name]
    torch.manual_seed(0)
    config = TrainConfig(
        method=method,
        loss=loss,
        backbone="lcnn",
        max_len=2.0,
        bf16=False,
        domain_columns=["domain"] if method in ("dann", "coral", "mmd", "groupdro") else [],
    ).validate()
    domains = {"domain": list(CONDITIONS)} if config.domain_columns else {}
    data = TrainData(frame, None, None, domains, None)
    model = build_model(build_model_config(config))
    total = 10**6
    m = build_method(config, domains, total)
    heads = method_modules(m, model, torch.device("cpu"))
    module = train_module(model, heads, None, m, criterion(loss))
    stepper = Stepper(
        config,
        data,
        model=model,
        heads=heads,
        module=module,
        net=module,
        optimizer=build_optimizer(module, config),
        device=torch.device("cpu"),
        world_size=1,
        total_steps=total,
        method=m,
    )
    return stepper, TrainState(total_steps=total)


def _step_time(name: str, batch, frame, steps: int, warmup: int = 2) -> float:
    stepper, state = _stepper(name, frame)
    stepper.module.train()
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        stepper.backward(batch, stepper.conditions(batch), state, last_micro=True, position=i + 1)
        stepper.step(state)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    batch, frame = _batch(args.batch, args.seconds)
    best = {name: float("inf") for name in VARIANTS}
    for _ in range(args.rounds):
        for name in VARIANTS:
            best[name] = min(best[name], _step_time(name, batch, frame, args.steps))
    print(
        f"LCNN, batch {args.batch} x {args.seconds:.1f} s, median of {args.steps} steps, best of {args.rounds} rounds"
    )
    print(f"{'method':<10} {'step ms':>8} {'/ ERM':>6}  goal")
    for name, seconds in best.items():
        ratio = seconds / best["erm"]
        goal = GOALS.get(name)
        verdict = "" if goal is None else f"<= {goal}  {'ok' if ratio <= goal else 'MISSED'}"
        print(f"{name:<10} {seconds * 1e3:8.1f} {ratio:6.3f}  {verdict}")


if __name__ == "__main__":
    main()
