"""The audit trail of import runs (``ImportRun`` rows): what was imported from where, when.

A run's row is written when it starts and completed when it ends, each in its own short
transaction, so a killed run stays visible as 'running' with no end, and the next run of the
same source simply continues (the packages it committed are known by their checksums).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from darkserver.lookup.models import ImportRun


@dataclass(slots=True)
class RunCounts:
    new: int = 0
    known: int = 0
    failed: int = 0
    bytes_read: int = 0
    seconds: float = 0.0


def start(source: str, kind: str) -> int:
    run = ImportRun.objects.create(source=source[:1024], kind=kind, started_at=timezone.now())
    return int(run.pk)


def finish(run_id: int, counts: RunCounts, aborted: bool = False) -> None:
    """Complete a run's row; ``aborted``: the run stopped on an error of its own (an index
    that cannot be read), so it is 'failed' even with no failed package."""
    ImportRun.objects.filter(pk=run_id).update(
        status="failed" if counts.failed or aborted else "done",
        finished_at=timezone.now(),
        new=counts.new,
        known=counts.known,
        failed=counts.failed,
        bytes_read=counts.bytes_read,
        seconds=round(counts.seconds, 3),
    )


def history(limit: int = 20) -> list[ImportRun]:
    return list(ImportRun.objects.order_by("-started_at", "-id")[:limit])


def table(runs: list[ImportRun]) -> str:
    """The runs as a plain text table, newest first."""
    header = ("started (UTC)", "kind", "status", "new", "known", "failed", "MB", "seconds",
              "source")
    rows = [header] + [
        (
            f"{r.started_at:%Y-%m-%d %H:%M:%S}",
            r.kind,
            r.status,
            str(r.new),
            str(r.known),
            str(r.failed),
            f"{r.bytes_read / 1e6:.1f}",
            f"{r.seconds:.1f}",
            r.source,
        )
        for r in runs
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in rows
    )


def as_dict(run: ImportRun) -> dict[str, object]:
    return {
        "source": run.source,
        "kind": run.kind,
        "status": run.status,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "new": run.new,
        "known": run.known,
        "failed": run.failed,
        "bytes": run.bytes_read,
        "seconds": run.seconds,
    }
