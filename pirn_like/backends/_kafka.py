"""What the Kafka parts share: aiokafka runs on asyncio only, and its clients start
(or fail to start) the same way for triggers, streaming sources and emitters."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pirn_like._errors import BackendError, MissingExtraError

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

__all__ = ["kafka_client_options", "consumer_client_options", "require_aiokafka", "start_client"]

BootstrapServers = str | Sequence[str]
_Client = TypeVar("_Client", "AIOKafkaProducer", "AIOKafkaConsumer")


def require_aiokafka(feature: str) -> None:
    """Fail clearly unless ``feature`` can run here: aiokafka installed, asyncio running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            f"{feature} runs on asyncio only (aiokafka is an asyncio library), but no "
            "asyncio event loop is running here (trio?): run it under asyncio, e.g. "
            "anyio.run(main, backend='asyncio')"
        ) from None
    if importlib.util.find_spec("aiokafka") is None:
        raise MissingExtraError(feature, "kafka", "aiokafka")


def kafka_client_options(
    feature: str,
    bootstrap_servers: BootstrapServers,
    options: Mapping[str, Any],
    reserved: Mapping[str, Any],
) -> dict[str, Any]:
    """The keyword arguments of an aiokafka client: the user's ``options`` plus what
    ``feature`` sets itself (``reserved``), which the user may not override."""
    if isinstance(bootstrap_servers, str):
        if not bootstrap_servers.strip():
            raise ValueError(f"{feature} needs bootstrap_servers, e.g. 'localhost:9092'")
    elif not bootstrap_servers or not all(isinstance(s, str) for s in bootstrap_servers):
        raise ValueError(
            f"{feature}: bootstrap_servers must be 'host:port' or a list of them, "
            f"got {bootstrap_servers!r}"
        )
    clash = sorted({"bootstrap_servers", *reserved} & set(options))
    if clash:
        raise ValueError(f"{feature} sets {clash} itself; remove them from the options")
    servers = bootstrap_servers if isinstance(bootstrap_servers, str) else list(bootstrap_servers)
    return {**options, **reserved, "bootstrap_servers": servers}


def consumer_client_options(
    feature: str,
    bootstrap_servers: BootstrapServers,
    shared: Mapping[str, Any],
    consumer: Mapping[str, Any],
    group_id: str,
) -> dict[str, Any]:
    """Arguments of a consumer in the group ``group_id`` with auto-commit off (offsets
    are committed once messages are settled); new groups start at the earliest offset."""
    if not isinstance(group_id, str) or not group_id:
        raise ValueError(f"{feature} needs a consumer group id, got {group_id!r}")
    return kafka_client_options(
        feature,
        bootstrap_servers,
        {"auto_offset_reset": "earliest", **shared, **consumer},
        {"group_id": group_id, "enable_auto_commit": False},
    )


async def start_client(feature: str, client: _Client, servers: BootstrapServers) -> _Client:
    """Start ``client``; if the brokers cannot be reached, close it and raise
    ``BackendError`` naming them."""
    from aiokafka.errors import KafkaError

    try:
        await client.start()
    except (KafkaError, OSError) as exc:
        await client.stop()
        raise BackendError(f"{feature} could not connect to Kafka at {servers!r}: {exc}") from exc
    except BaseException:
        await client.stop()
        raise
    return client
