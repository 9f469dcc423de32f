"""Capability knots: a data platform's operations as typed async knots with lineage.

Each capability is a subpackage with a Protocol for its engine, an embedded
default and a server implementation, and knots whose inputs and outputs are
pydantic models, so every effect carries content-addressed lineage back to the
inputs that caused it:

- ``pirn_like.capabilities.events``: a bi-temporal, append-only event store
  (``StoreWrite``, ``StoreRead``, ``StoreCorrect``) and the bridge that pushes its
  events to Kafka, a ValKey stream or a webhook (``BridgePush``).
- ``pirn_like.capabilities.rag``: ``Chunk``, ``Embed``, ``IndexUpsert``,
  ``Retrieve`` and ``Generate``.
- ``pirn_like.capabilities.lakehouse``: ``LakehouseIngest`` and ``LakehouseQuery``
  on Apache Iceberg.
- ``pirn_like.capabilities.sql``: ``SqlLoad`` (append, merge, SCD2).
- ``pirn_like.capabilities.files``: ``Collect``, ``Mirror`` and friends.

Nothing here is imported by ``import pirn_like``; import the subpackage you use.
"""
