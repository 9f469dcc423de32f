"""OpenLineage run events (openlineage-python) from pirn_like's lineage records."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Self

import anyio

from pirn_like._errors import MissingExtraError
from pirn_like._version import __version__
from pirn_like.core._events import KnotFinished, RunEvent, RunFinished, RunStarted
from pirn_like.core._records import KnotLineage, RunRecord, RunResult, RunStatus
from pirn_like.core._results import Outcome

if TYPE_CHECKING:
    from openlineage.client import OpenLineageClient
    from openlineage.client.event_v2 import RunEvent as OLRunEvent
    from openlineage.client.transport import Transport

__all__ = ["OpenLineageEmitter"]

PRODUCER = f"https://pypi.org/project/pirn-like/{__version__}"
_BY_US: dict[str, Any] = {"producer": PRODUCER}
"""Facets' ``_producer``: attrs names its init argument ``producer``, which type
checkers do not know."""
_PARAMETER_CLASS = "pirn_like.Parameter"
_TERMINAL = {
    RunStatus.SUCCEEDED: "COMPLETE",
    RunStatus.FAILED: "FAIL",
    RunStatus.TIMED_OUT: "FAIL",
    RunStatus.CANCELLED: "ABORT",
}
_KNOT_TERMINAL = {Outcome.OK: "COMPLETE", Outcome.ERR: "FAIL", Outcome.CANCELLED: "ABORT"}


class OpenLineageEmitter:
    """OpenLineage ``RunEvent``s for every run, and for every knot as a child job.

    A run is the job ``job_name`` in ``namespace``: ``START`` when it begins, then
    ``COMPLETE``, or ``FAIL`` (with an error message facet) when a knot failed or it
    timed out. Each knot that ran is the job ``<job_name>.<knot id>``, with a
    ``START`` and its final event (``COMPLETE``, ``FAIL``, ``ABORT``) carrying a
    parent run facet that points at the run. Datasets are values, named by content
    hash (``sha256:...``) in ``namespace``: a knot's inputs are the values it
    consumed and its output the value it produced, from its lineage record; a run's
    inputs are its parameters and its outputs its terminals' values, so the same
    value joins jobs across runs. OpenLineage run ids are UUIDs: a generated
    ``run-<hex>`` id maps to the UUID ``<hex>``, any other id to a UUID5 of it, and
    the pirn_like run id is kept in a tags facet (``pirn_like.run_id``).

    Give a ``client`` (``openlineage.client.OpenLineageClient``), a ``transport``, or
    a ``url`` (HTTP transport, e.g. Marquez); with none, the client configures itself
    from ``OPENLINEAGE_*`` variables or ``openlineage.yml``. The client is
    synchronous: events are sent from a worker thread, one at a time, in order.
    """

    def __init__(
        self,
        client: OpenLineageClient | None = None,
        *,
        transport: Transport | None = None,
        url: str | None = None,
        namespace: str = "pirn_like",
        job_name: str = "tapestry",
        knot_events: bool = True,
    ) -> None:
        if sum(x is not None for x in (client, transport, url)) > 1:
            raise ValueError("OpenLineageEmitter takes one of client, transport or url")
        self._client = client
        self._owns_client = client is None
        self._transport = transport
        self._url = url
        self.namespace = namespace
        self.job_name = job_name
        self.knot_events = knot_events
        self._limiter: anyio.CapacityLimiter | None = None

    async def __aenter__(self) -> Self:
        try:
            from openlineage.client import OpenLineageClient
        except ImportError as exc:
            raise MissingExtraError(
                "OpenLineageEmitter", "openlineage", "openlineage-python"
            ) from exc
        # One send at a time, even past an abandoned (timed-out) one: events stay in order.
        self._limiter = anyio.CapacityLimiter(1)
        if self._owns_client:
            transport = self._transport
            if transport is None and self._url is not None:
                from openlineage.client.transport.http import HttpConfig, HttpTransport

                transport = HttpTransport(HttpConfig(url=self._url))
            self._client = await anyio.to_thread.run_sync(
                lambda: OpenLineageClient(transport=transport)
            )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        client = self._client
        if client is not None and self._owns_client:
            self._client = None
            await anyio.to_thread.run_sync(client.close, 5.0)  # flushes an async transport

    @property
    def client(self) -> OpenLineageClient:
        if self._client is None:
            raise RuntimeError("OpenLineageEmitter is not open: use it in Tapestry(emitters=[...])")
        return self._client

    async def emit(self, event: RunEvent) -> None:
        """Send the OpenLineage events that ``event`` stands for (none for KnotStarted)."""
        match event:
            case RunStarted(run=record):
                events = [self.run_started(record)]
            case KnotFinished(lineage=rec) if self.knot_events:
                events = self.knot_finished(rec)
            case RunFinished(result=result):
                events = [self.run_finished(result)]
            case _:
                return
        client = self.client
        for ol_event in events:
            await anyio.to_thread.run_sync(
                client.emit, ol_event, limiter=self._limiter, abandon_on_cancel=True
            )

    # -- building events ---------------------------------------------------------

    def run_started(self, record: RunRecord) -> OLRunEvent:
        """The ``START`` event of a run."""
        facets = self._run_facets(record.run_id, record.trigger, record.labels)
        if record.parent_run_id:
            facets["parent"] = self._parent(record.parent_run_id)
        return self._event(
            "START",
            record.started_at,
            self._run(record.run_id, facets),
            self._job(self.job_name, "DAG"),
            inputs=record.parameter_hashes.values(),
        )

    def run_finished(self, result: RunResult) -> OLRunEvent:
        """The ``COMPLETE``, ``FAIL`` or ``ABORT`` event of a run."""
        from openlineage.client.facet_v2 import error_message_run

        facets = self._run_facets(result.run_id, result.trigger, {})
        if result.parent_run_id:
            facets["parent"] = self._parent(result.parent_run_id)
        if result.exceptions:
            first = result.exceptions[0]
            facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=f"knot {first.knot_id}: {first.type}: {first.message}",
                programmingLanguage="PYTHON",
                stackTrace=first.traceback,
                **_BY_US,
            )
        parameters = (r.output_hash for r in result.lineage if r.knot_class == _PARAMETER_CLASS)
        outputs = (_ok_output(result, knot_id) for knot_id in result.terminals_requested)
        return self._event(
            _TERMINAL[result.status],
            result.finished_at,
            self._run(result.run_id, facets),
            self._job(self.job_name, "DAG"),
            inputs=parameters,
            outputs=outputs,
        )

    def knot_finished(self, rec: KnotLineage) -> list[OLRunEvent]:
        """``START`` and final events of one knot execution (none for parameters and
        knots that were skipped: they did not run)."""
        final = _KNOT_TERMINAL.get(rec.outcome)
        if final is None or rec.knot_class == _PARAMETER_CLASS:
            return []
        facets = self._run_facets(rec.run_id, None, {})
        facets["parent"] = self._parent(rec.run_id)
        key = f"pirn_like:knot:{rec.run_id}/{rec.knot_id}/{rec.started_at.isoformat()}"
        run = self._run(rec.run_id, facets, run_uuid=str(uuid.uuid5(uuid.NAMESPACE_URL, key)))
        job = self._job(f"{self.job_name}.{rec.knot_id}", "TASK")
        inputs = rec.parent_input_hashes.values()
        return [
            self._event("START", rec.started_at, run, job, inputs=inputs),
            self._event(final, rec.finished_at, run, job, inputs=inputs, outputs=[rec.output_hash]),
        ]

    def _event(
        self,
        event_type: str,
        moment: datetime,
        run: Any,
        job: Any,
        *,
        inputs: Iterable[str | None] = (),
        outputs: Iterable[str | None] = (),
    ) -> OLRunEvent:
        from openlineage.client.event_v2 import InputDataset, OutputDataset, RunEvent, RunState

        ns = self.namespace
        return RunEvent(
            eventType=RunState(event_type),
            eventTime=moment.isoformat(),
            run=run,
            job=job,
            producer=PRODUCER,
            inputs=[InputDataset(namespace=ns, name=h) for h in _unique(inputs)],
            outputs=[OutputDataset(namespace=ns, name=h) for h in _unique(outputs)],
        )

    def _run(self, run_id: str, facets: dict[str, Any], *, run_uuid: str | None = None) -> Any:
        from openlineage.client.event_v2 import Run

        return Run(runId=run_uuid or openlineage_run_id(run_id), facets=facets)

    def _job(self, name: str, job_type: str) -> Any:
        from openlineage.client.event_v2 import Job
        from openlineage.client.facet_v2 import job_type_job

        facet = job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration="PIRN_LIKE", jobType=job_type, **_BY_US
        )
        return Job(namespace=self.namespace, name=name, facets={"jobType": facet})

    def _parent(self, run_id: str) -> Any:
        from openlineage.client.facet_v2 import parent_run

        return parent_run.ParentRunFacet(
            run=parent_run.Run(runId=openlineage_run_id(run_id)),
            job=parent_run.Job(namespace=self.namespace, name=self.job_name),
            **_BY_US,
        )

    def _run_facets(
        self, run_id: str, trigger: dict[str, Any] | None, labels: dict[str, str]
    ) -> dict[str, Any]:
        from openlineage.client.facet_v2 import processing_engine_run, tags_run

        tags = [tags_run.TagsRunFacetFields("pirn_like.run_id", run_id, "PIRN_LIKE")]
        if trigger and trigger.get("kind"):
            tags.append(tags_run.TagsRunFacetFields("pirn_like.trigger", str(trigger["kind"])))
        tags.extend(tags_run.TagsRunFacetFields(k, v, "USER") for k, v in labels.items())
        return {
            "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
                version=__version__, name="pirn_like", **_BY_US
            ),
            "tags": tags_run.TagsRunFacet(tags=tags, **_BY_US),
        }


def openlineage_run_id(run_id: str) -> str:
    """The OpenLineage run id (a UUID) of a pirn_like run id."""
    hex_part = run_id.removeprefix("run-")
    try:
        return str(uuid.UUID(hex_part))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"pirn_like:run:{run_id}"))


def _ok_output(result: RunResult, knot_id: str) -> str | None:
    try:
        rec = result.lineage_for(knot_id)
    except KeyError:
        return None
    return rec.output_hash if rec.outcome is Outcome.OK else None


def _unique(hashes: Iterable[str | None]) -> list[str]:
    return list(dict.fromkeys(h for h in hashes if h is not None))
