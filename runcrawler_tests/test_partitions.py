from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    DagsterInstance,
    MultiPartitionKey,
    asset,
    materialize,
)
from hypothesis import given
from hypothesis import strategies as st

from runcrawler_assets.defs.partitions import (
    all_partition_tags,
    cluster_user_partitions,
    decode_name,
    encode_name,
    names_of,
    partition_key,
    register_partitions,
    run_pairs,
)

AWKWARD_NAMES = [
    "jdupont",
    "m.garcia",
    "o'neil",
    "anne-marie",
    "jérôme",
    "li wei",
    "a|b",
    "x,y",
    "[admin]",
    "50%",
    "dots...here",
    "new\nline",
    "x'; DROP TABLE runs; --",
]


def test_readable_names_stay_readable():
    for name in ["m.garcia", "o'neil", "anne-marie", "jérôme", "li wei", "jean-zay"]:
        assert encode_name(name) == name


def test_separators_dagster_uses_are_encoded():
    for name in ["a|b", "x,y", "[admin]", "dots...here", "new\nline", "50%"]:
        key = encode_name(name)
        assert not set("|,[]\n") & set(key)
        assert "..." not in key
        assert decode_name(key) == name


@given(st.text(min_size=1))
def test_any_name_round_trips(name):
    assert decode_name(encode_name(name)) == name


def test_undecodable_file_name_bytes_round_trip():
    name = b"caf\xe9".decode("utf-8", "surrogateescape")
    assert decode_name(encode_name(name)) == name


def test_awkward_names_round_trip_through_dagster_multi_partition_keys():
    instance = DagsterInstance.ephemeral()
    pairs = [("kraken", user) for user in AWKWARD_NAMES] + [("jean-zay", "o'neil")]
    keys = register_partitions(instance, pairs)
    assert len(keys) == len(pairs)
    for (cluster, user), key in zip(pairs, keys, strict=True):
        parsed = cluster_user_partitions.get_partition_key_from_str(str(key))
        assert isinstance(parsed, MultiPartitionKey)
        assert names_of(parsed) == (cluster, user)
        assert names_of(str(key)) == (cluster, user)
    assert sorted(instance.get_dynamic_partitions("cluster")) == ["jean-zay", "kraken"]


def test_registering_twice_adds_nothing_new():
    instance = DagsterInstance.ephemeral()
    register_partitions(instance, [("kraken", "o'neil")])
    register_partitions(instance, [("kraken", "o'neil"), ("irene", "o'neil")])
    assert instance.get_dynamic_partitions("user") == ["o'neil"]
    assert sorted(instance.get_dynamic_partitions("cluster")) == ["irene", "kraken"]


def test_partition_key_orders_dimensions_by_name():
    assert str(partition_key("kraken", "m.garcia")) == "kraken|m.garcia"


def test_the_all_partitions_tags_make_one_run_cover_every_registered_pair():
    """The range tags are plain strings (Dagster exports no constant): a run must honour them."""
    instance = DagsterInstance.ephemeral()
    assert all_partition_tags(instance) == {}
    pairs = [("kraken", "alice"), ("kraken", "o'neil"), ("irene", "a|b")]
    register_partitions(instance, pairs)
    covered: list[str] = []

    @asset(partitions_def=cluster_user_partitions, backfill_policy=BackfillPolicy.single_run())
    def probe(context: AssetExecutionContext) -> None:
        covered.extend(context.partition_keys)

    result = materialize([probe], instance=instance, tags=all_partition_tags(instance))
    assert result.success
    # The cross product: every cluster with every user, pairs never seen included.
    assert sorted(names_of(key) for key in covered) == sorted(
        (cluster, user) for cluster in ("kraken", "irene") for user in ("alice", "o'neil", "a|b")
    )


def test_a_run_covers_the_pairs_of_its_partition_or_of_its_range():
    """`run_pairs`: the sensor's run of one partition (its key read from the run's tags) and
    a backfill's run over a range (every key of the range) name the same folders as
    Dagster's own `partition_keys` does, awkward names included."""
    instance = DagsterInstance.ephemeral()
    pairs = [("kraken", name) for name in AWKWARD_NAMES[:8]] + [("irene", "a|b")]
    register_partitions(instance, pairs)
    seen: list[tuple[list[tuple[str, str]], list[tuple[str, str]]]] = []

    @asset(partitions_def=cluster_user_partitions, backfill_policy=BackfillPolicy.single_run())
    def probe(context: AssetExecutionContext) -> None:
        seen.append((run_pairs(context), [names_of(key) for key in context.partition_keys]))

    for cluster, user in [("kraken", "o'neil"), ("irene", "a|b"), ("kraken", "li wei")]:
        key = partition_key(cluster, user)
        assert materialize([probe], instance=instance, partition_key=key).success
        assert seen[-1] == ([(cluster, user)], [(cluster, user)])
    assert materialize([probe], instance=instance, tags=all_partition_tags(instance)).success
    mine, dagsters = seen[-1]
    assert mine == dagsters and len(mine) == 2 * 8  # both clusters with every user
