"""DANN step time / ERM step time for LFCC-LCNN on the same batch of pre-rendered augmented audio.

Goal: ratio <= 1.15. The batch is rendered once (clean, A-law, telephone band) so only the
model, the domain head, the gradient reversal and the optimiser step are timed.
Usage: python benchmarks/bench_train.py [--batch 16] [--seconds 2] [--steps 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _batch(n: int, seconds: float, seed: int = 0):
    import torch

    from cm_cli.degrade.policy import apply_policy

    rng = np.random.default_rng(seed)
    conditions = ("clean", "alaw", "telephony")
    waves, domains = [], []
    for i in range(n):
        wave = (rng.standard_normal(int(seconds * 16000)) * 0.1).astype(np.float32)
        out, label = apply_policy(wave, 16000, conditions[i % 3], seed=i, utt_id=f"u{i}", cache=False)
        waves.append(out[: len(wave)])
        domains.append(conditions.index(label))
    x = torch.from_numpy(np.stack(waves))
    return x, torch.full((n,), x.shape[1]), torch.tensor([i % 2 for i in range(n)]), torch.tensor(domains)


def _step_time(method: str, batch, steps: int, warmup: int = 3) -> float:
    import torch

    from cm_cli.training.config import TrainConfig
    from cm_cli.training.dann import build_domain_heads
    from cm_cli.training.loop import build_model_config
    from cm_cli.training.step import train_module as _train_module
    from cm_cli.models.model import build_model

    torch.manual_seed(0)
    config = TrainConfig(method=method, backbone="lcnn", domain_columns=["domain"] if method == "dann" else [])
    model = build_model(build_model_config(config))
    heads = build_domain_heads(model.backbone.embedding_dim, {"domain": ["clean", "alaw", "telephony"]}) \
        if method == "dann" else None
    module = _train_module(model, heads, None)
    optimizer = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-4)
    waves, lengths, labels, domains = batch
    targets = {"domain": domains} if method == "dann" else {}
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        out, task, dom = module(waves, lengths, labels, targets, 0.5)
        loss = task + (dom.total if dom is not None else 0.0)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    batch = _batch(args.batch, args.seconds)
    erm, dann = [], []
    for _ in range(2):  # interleave to share machine noise
        erm.append(_step_time("erm", batch, args.steps))
        dann.append(_step_time("dann", batch, args.steps))
    erm_t, dann_t = min(erm), min(dann)
    ratio = dann_t / erm_t
    print(f"LCNN, batch {args.batch} x {args.seconds:.1f} s: ERM step {erm_t * 1e3:.1f} ms, "
          f"DANN step {dann_t * 1e3:.1f} ms, ratio {ratio:.3f} (goal <= 1.15)")


if __name__ == "__main__":
    main()
