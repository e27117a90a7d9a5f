"""Recent spans from the local trace store (`<data_dir>/traces/*.jsonl`, one file per
process, written by shared.telemetry). The store grows without end in a long dev session,
so only the newest files are read, and only their last few megabytes; what was read is
kept for a few seconds, and an unchanged file is never parsed twice."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from outreach.domain.ops import Span, TraceSummary, span_from_json, summarise_traces


@dataclass(frozen=True)
class _FileSpans:
    size: int
    mtime_ns: int
    spans: tuple[Span, ...]


class TraceStore:
    def __init__(
        self,
        traces_dir: Path,
        *,
        max_files: int = 8,
        tail_bytes: int = 2_000_000,
        ttl_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.traces_dir = traces_dir
        self.max_files = max_files
        self.tail_bytes = tail_bytes
        self.ttl_s = ttl_s
        self.clock = clock
        self._lock = threading.Lock()
        self._files: dict[Path, _FileSpans] = {}
        self._by_trace: dict[str, list[Span]] = {}
        self._read_at: float | None = None

    def recent(self, limit: int = 50, *, across_services: bool = False) -> list[TraceSummary]:
        """The newest traces in the window read, newest first; with `across_services`, only
        those with spans from more than one service (a change's journey, not housekeeping)."""
        by_trace = self._window()
        if across_services:
            by_trace = {
                trace_id: spans
                for trace_id, spans in by_trace.items()
                if len({s.service for s in spans}) > 1
            }
        return summarise_traces((s for spans in by_trace.values() for s in spans), limit)

    def trace(self, trace_id: str) -> list[Span]:
        """Every span of one trace within the window read (none if it is older)."""
        return list(self._window().get(trace_id.lower(), ()))

    @property
    def window_description(self) -> str:
        return (
            f"the last {self.tail_bytes // 1_000_000} MB of each of the newest "
            f"{self.max_files} files in {self.traces_dir}"
        )

    def _window(self) -> dict[str, list[Span]]:
        with self._lock:
            now = self.clock()
            if self._read_at is None or now - self._read_at >= self.ttl_s:
                self._refresh()
                self._read_at = now
            return self._by_trace

    def _refresh(self) -> None:
        try:
            candidates = [(p, p.stat()) for p in self.traces_dir.glob("*.jsonl")]
        except OSError:
            candidates = []
        candidates.sort(key=lambda item: item[1].st_mtime_ns, reverse=True)
        files: dict[Path, _FileSpans] = {}
        for path, stat in candidates[: self.max_files]:
            cached = self._files.get(path)
            if cached and (cached.size, cached.mtime_ns) == (stat.st_size, stat.st_mtime_ns):
                files[path] = cached
                continue
            try:
                spans = tuple(self._read_tail(path, stat.st_size))
            except OSError:
                continue  # removed between listing and reading
            files[path] = _FileSpans(stat.st_size, stat.st_mtime_ns, spans)
        by_trace: dict[str, list[Span]] = defaultdict(list)
        for cached in files.values():
            for span in cached.spans:
                by_trace[span.trace_id].append(span)
        self._files = files
        self._by_trace = dict(by_trace)

    def _read_tail(self, path: Path, size: int) -> list[Span]:
        offset = max(0, size - self.tail_bytes)
        with path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read(self.tail_bytes)
        lines = data.split(b"\n")
        if offset > 0:
            lines = lines[1:]  # the first line was cut by the window
        spans = []
        for line in lines:
            if not line.strip():
                continue
            try:
                span = span_from_json(json.loads(line))
            except (ValueError, AttributeError, TypeError):
                continue  # a half-written last line from a process killed mid-export
            if span is not None:
                spans.append(span)
        return spans
