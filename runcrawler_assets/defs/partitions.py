"""Partition keys: one per cluster × user, reversible for any folder name.

Dagster does not validate dynamic partition keys, but `|` separates the
dimensions of a multi-partition key, `,` `[` `]` are used by its range and
list syntax, and `...` separates range ends. Names keep their readable form
(dots, dashes, apostrophes, spaces, non-ASCII letters stay as they are);
only `%`, those separators, `/` `\\`, control characters and the second of
two consecutive dots are percent-encoded as UTF-8 bytes (`%7C` for `|`).
Because `%` itself is always encoded, decoding is plain percent-decoding.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from urllib.parse import unquote

from dagster import (
    AssetCheckExecutionContext,
    AssetExecutionContext,
    BetaWarning,
    DagsterInstance,
    DynamicPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
)

CLUSTER = "cluster"
USER = "user"

# The run tags of a single-run backfill over a key range (what the UI's backfill
# and a `BackfillPolicy.single_run()` asset read). Dagster exports no constant for
# them; test_partitions checks that a run tagged so covers the range.
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
# Dagster marks `backfill_policy` beta and says so at each asset given one, in every process
# that loads them (the UI's code server, the CLI, the benchmarks): runcrawler relies on
# single-run backfills knowingly (a crawl is one run), so that notice alone is silenced.
warnings.filterwarnings("ignore", "Parameter `backfill_policy`", BetaWarning)

_ALWAYS_ENCODED = frozenset('%|,[]/\\*?"<>:')

cluster_partitions = DynamicPartitionsDefinition(name="cluster")
user_partitions = DynamicPartitionsDefinition(name="user")
cluster_user_partitions = MultiPartitionsDefinition(
    {CLUSTER: cluster_partitions, USER: user_partitions}
)


def _encode_char(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogateescape"))


def encode_name(name: str) -> str:
    """A folder name as a partition key (reversible, readable where allowed)."""
    out: list[str] = []
    for index, char in enumerate(name):
        forbidden = (
            char in _ALWAYS_ENCODED
            or not char.isprintable()
            or (char == "." and index > 0 and name[index - 1] == ".")
        )
        out.append(_encode_char(char) if forbidden else char)
    return "".join(out)


def decode_name(key: str) -> str:
    """Inverse of `encode_name`."""
    return unquote(key, encoding="utf-8", errors="surrogateescape")


def partition_key(cluster: str, user: str) -> MultiPartitionKey:
    """The partition key of a cluster and user folder name."""
    return MultiPartitionKey({CLUSTER: encode_name(cluster), USER: encode_name(user)})


def names_of(key: str | MultiPartitionKey) -> tuple[str, str]:
    """The (cluster, user) folder names of a partition key."""
    if not isinstance(key, MultiPartitionKey):
        key = cluster_user_partitions.get_partition_key_from_str(key)
    dims = key.keys_by_dimension
    return decode_name(dims[CLUSTER]), decode_name(dims[USER])


def run_pairs(context: AssetExecutionContext | AssetCheckExecutionContext) -> list[tuple[str, str]]:
    """The (cluster, user) pairs of the partitions a partitioned run covers. A run of one
    partition (the archive sensor's) has its key in its tags; `context.partition_keys`
    would list every key of the definition to find a range's (two queries of the instance,
    ~8 ms a call, a few calls per run: issue 16)."""
    if context.has_partition_key:
        return [names_of(context.partition_key)]
    return [names_of(key) for key in context.partition_keys]


def registered_pairs(instance: DagsterInstance) -> list[tuple[str, str]]:
    """The (cluster, user) pair of every partition the instance holds."""
    keys = cluster_user_partitions.get_partition_keys(dynamic_partitions_store=instance)
    return [names_of(key) for key in keys]


def register_partitions(
    instance: DagsterInstance, pairs: Iterable[tuple[str, str]]
) -> list[MultiPartitionKey]:
    """Add the clusters and users of `pairs` to the instance; returns every pair's key."""
    pairs = list(pairs)
    for definition, names in (
        (cluster_partitions, {encode_name(c) for c, _ in pairs}),
        (user_partitions, {encode_name(u) for _, u in pairs}),
    ):
        assert definition.name is not None
        known = set(instance.get_dynamic_partitions(definition.name))
        missing = sorted(names - known)
        if missing:
            instance.add_dynamic_partitions(definition.name, missing)
    return [partition_key(c, u) for c, u in pairs]


def all_partition_tags(instance: DagsterInstance) -> dict[str, str]:
    """Run tags that make one run cover every partition registered in `instance`."""
    keys = cluster_user_partitions.get_partition_keys(dynamic_partitions_store=instance)
    if not keys:
        return {}
    return {PARTITION_RANGE_START_TAG: keys[0], PARTITION_RANGE_END_TAG: keys[-1]}
