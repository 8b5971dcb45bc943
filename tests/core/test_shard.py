import pytest

from cm_cli.core.errors import UsageError
from cm_cli.core.shard import Shard, parse_shard, resolve_shard


def test_parse_and_select_cover_every_item_once():
    items = list(range(10))
    chosen = [x for i in range(3) for x in parse_shard(f"{i}/3").select(items)]
    assert chosen == items


@pytest.mark.parametrize("bad", ["5/4", "4/4", "1", "a/b", "0/0", "-1/2"])
def test_bad_shards(bad):
    with pytest.raises(UsageError):
        parse_shard(bad)


def test_slurm_array_defaults():
    env = {"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_MIN": "5", "SLURM_ARRAY_TASK_COUNT": "4"}
    assert resolve_shard(None, env) == Shard(2, 4)
    assert resolve_shard("1/2", env) == Shard(1, 2)
    assert resolve_shard(None, {}) == Shard(0, 1)


def test_part_name():
    assert Shard(3, 12).part_name() == "part-00003-of-00012.parquet"


def test_stepped_slurm_array_gives_consecutive_shards():
    # sbatch --array=0-4:2 runs tasks 0, 2, 4 with COUNT=3, STEP=2 (issue 19 item 10: was --shard 4/3)
    base = {
        "SLURM_ARRAY_TASK_MIN": "0",
        "SLURM_ARRAY_TASK_MAX": "4",
        "SLURM_ARRAY_TASK_STEP": "2",
        "SLURM_ARRAY_TASK_COUNT": "3",
    }
    shards = [resolve_shard(None, {**base, "SLURM_ARRAY_TASK_ID": str(t)}) for t in (0, 2, 4)]
    assert shards == [Shard(0, 3), Shard(1, 3), Shard(2, 3)]
    offset = {
        "SLURM_ARRAY_TASK_MIN": "10",
        "SLURM_ARRAY_TASK_MAX": "19",
        "SLURM_ARRAY_TASK_STEP": "3",
        "SLURM_ARRAY_TASK_COUNT": "4",
        "SLURM_ARRAY_TASK_ID": "16",
    }
    assert resolve_shard(None, offset) == Shard(2, 4)


def test_irregular_slurm_array_asks_for_an_explicit_shard():
    env = {
        "SLURM_ARRAY_TASK_ID": "3",
        "SLURM_ARRAY_TASK_MIN": "1",
        "SLURM_ARRAY_TASK_MAX": "8",
        "SLURM_ARRAY_TASK_COUNT": "3",
    }  # --array=1,3,8
    with pytest.raises(UsageError, match="evenly stepped"):
        resolve_shard(None, env)
