"""Where each attack sits in embedding space relative to bona fide speech and the other attacks.

These per-attack numbers are the candidate explanations of leave-one-attack-out
gaps: an attack far from the seen spoofs, or close to bona fide along the axis a
detector learns, should be the one a detector misses when it never saw it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

__all__ = ["GEOMETRY_COLUMNS", "GEOMETRY_METRICS", "attack_geometry"]

GEOMETRY_COLUMNS = ["attack", "layer", "d_bona", "cos_bona", "d_near_spoof", "bona_axis_proj"]
GEOMETRY_METRICS = ("d_bona", "cos_bona", "d_near_spoof", "bona_axis_proj")


def attack_geometry(X: "np.ndarray", is_bona: "np.ndarray", attack: "np.ndarray", *, layer: str) -> "pd.DataFrame":
    """One row per attack (GEOMETRY_COLUMNS) from standardised features.

    Features are z-scored over all rows first, so no single high-variance dimension
    dominates the distances. ``d_bona``: Euclidean distance between the attack's and
    the bona fide centroids; ``cos_bona``: their cosine distance (1 - cosine, the
    origin being the global mean); ``d_near_spoof``: distance to the nearest other
    attack's centroid; ``bona_axis_proj``: position of the attack's centroid along
    the axis from the centroid of all *other* spoofs (0) to the bona fide centroid
    (1), i.e. how bona-fide-like it looks to a detector that never saw it.
    """
    import numpy as np
    import pandas as pd

    X = np.asarray(X, dtype=np.float64)
    mean = X.mean(axis=0)
    std = X.std(axis=0)
    Z = (X - mean) / np.where(std > 0, std, 1.0)
    is_bona = np.asarray(is_bona, dtype=bool)
    attack = np.asarray(attack, dtype=object)
    mu_bona = Z[is_bona].mean(axis=0)
    names = sorted({str(a) for a in attack[~is_bona]})
    sums = {a: Z[(~is_bona) & (attack == a)].sum(axis=0) for a in names}
    counts = {a: int(((~is_bona) & (attack == a)).sum()) for a in names}
    total_sum = sum(sums.values())
    total_count = sum(counts.values())
    centroids = {a: sums[a] / counts[a] for a in names}
    rows = []
    for a in names:
        mu = centroids[a]
        d_bona = float(np.linalg.norm(mu - mu_bona))
        norms = np.linalg.norm(mu) * np.linalg.norm(mu_bona)
        cos_bona = float(1 - mu @ mu_bona / norms) if norms > 0 else float("nan")
        others = [b for b in names if b != a]
        d_near = min((float(np.linalg.norm(mu - centroids[b])) for b in others), default=float("nan"))
        if others:
            mu_seen = (total_sum - sums[a]) / (total_count - counts[a])
            axis = mu_bona - mu_seen
            length2 = float(axis @ axis)
            proj = float((mu - mu_seen) @ axis / length2) if length2 > 0 else float("nan")
        else:
            proj = float("nan")
        rows.append(
            {
                "attack": a,
                "layer": layer,
                "d_bona": d_bona,
                "cos_bona": cos_bona,
                "d_near_spoof": d_near,
                "bona_axis_proj": proj,
            }
        )
    return pd.DataFrame(rows, columns=GEOMETRY_COLUMNS)
