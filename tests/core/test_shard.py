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
