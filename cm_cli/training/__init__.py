"""Training: ERM and domain-adversarial (DANN) loops, schedules, resumption, distributed runs."""
