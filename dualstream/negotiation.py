"""Which answer a request asks for: pure functions over the query string and ``Accept``.

Order of precedence: an explicit ``stream`` or ``format`` parameter, then
``Accept`` (with q-values), then the view's default. Two clients are known by a
header: Datastar (``Datastar-Request: true``) always gets its own SSE dialect, and
htmx (``HX-Request: true``) gets ``text/html`` unless it asks for a stream.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from enum import Enum


class Mode(str, Enum):
    """The ways one endpoint can answer."""

    JSON = "json"  # batch: one JSON document once produce() has finished
    SSE = "sse"  # Server-Sent Events, each item as it is produced
    NDJSON = "ndjson"  # one JSON value per line, each item as it is produced
    HTML = "html"  # text/html: the fragments' HTML in order (an hx-get target); never chosen by Accept alone
    DATASTAR = "datastar"  # Server-Sent Events as Datastar reads them (datastar-patch-elements/-signals)

    @property
    def streams(self) -> bool:
        return self is not Mode.JSON


MEDIA_TYPES: dict[Mode, str] = {
    Mode.JSON: "application/json",
    Mode.SSE: "text/event-stream",
    Mode.NDJSON: "application/x-ndjson",
}

_STREAM_VALUES = {
    **dict.fromkeys(("true", "1", "yes", "on"), Mode.SSE),
    **dict.fromkeys(("false", "0", "no", "off"), Mode.JSON),
}


class NegotiationError(ValueError):
    """The request asked for something this endpoint cannot answer; ``status`` says how to refuse."""

    def __init__(self, message: str, status: int = 400, allowed: Collection[Mode] = ()) -> None:
        super().__init__(message)
        self.status = status
        #: The modes the endpoint answers, when it refused for want of one of them (406).
        self.allowed = tuple(allowed)


def negotiate(
    query: Mapping[str, Sequence[str]],
    accept: str,
    default: Mode,
    allowed: Collection[Mode] | None = None,
    *,
    htmx: bool = False,
    datastar: bool = False,
) -> Mode:
    """The mode for a request: ``query`` maps each parameter to its values (a ``QueryDict`` does).

    ``allowed``: the modes the endpoint answers (``default`` among them); asking for another one,
    by parameter or by an ``Accept`` that wants only others, is refused with a 406. None: every mode.

    ``datastar``: the request came from Datastar, which reads only its own events,
    so a stream is Datastar SSE whatever ``Accept`` says (it sends ``text/event-stream,
    text/html, application/json`` at equal q). ``htmx``: an htmx request, answered
    with HTML unless ``Accept`` names a stream type (htmx 4's SSE extension adds
    ``text/event-stream``); browsers name ``text/html`` on every navigation, so
    ``Accept`` alone never picks HTML. Where the endpoint does not answer the mode a
    header implies, the request is negotiated as any other.
    """
    allowed = tuple(Mode) if allowed is None else tuple(allowed)
    explicit = _from_query(query)
    if explicit is not None:
        mode = Mode.DATASTAR if datastar and explicit is Mode.SSE and Mode.DATASTAR in allowed else explicit
        if mode not in allowed:
            raise _not_acceptable(f"This endpoint does not answer {mode.value}", allowed)
        return mode
    if datastar and Mode.DATASTAR in allowed:
        return Mode.DATASTAR
    if htmx and Mode.HTML in allowed and not _names_a_stream(accept):
        return Mode.HTML
    return _from_accept(accept, default, allowed)


def _not_acceptable(message: str, allowed: Sequence[Mode]) -> NegotiationError:
    names = ", ".join(mode.value for mode in allowed)
    return NegotiationError(f"{message}; it answers {names}.", status=406, allowed=allowed)


def _from_query(query: Mapping[str, Sequence[str]]) -> Mode | None:
    modes: set[Mode] = set()
    for value in _values(query, "stream"):
        mode = _STREAM_VALUES.get(value.lower())
        if mode is None:
            raise NegotiationError(
                f"Invalid value for 'stream': {value[:40]!r}. Use one of true, 1, yes, on, false, 0, no, off."
            )
        modes.add(mode)
    for value in _values(query, "format"):
        try:
            modes.add(Mode(value.lower()))
        except ValueError:
            raise NegotiationError(
                f"Invalid value for 'format': {value[:40]!r}. Use one of {', '.join(m.value for m in Mode)}."
            ) from None
    if len(modes) > 1:
        raise NegotiationError("The 'stream' and 'format' parameters ask for different answers.")
    return modes.pop() if modes else None


def _values(query: Mapping[str, Sequence[str]], name: str) -> Sequence[str]:
    getlist = getattr(query, "getlist", None)  # a QueryDict's [] gives only the last value
    if getlist is not None:
        values: list[str] = getlist(name)
        return values
    value = query.get(name, ())
    return [value] if isinstance(value, str) else value


def _from_accept(accept: str, default: Mode, allowed: Sequence[Mode]) -> Mode:
    accepted = [mode for mode in allowed if mode in MEDIA_TYPES]  # the modes an Accept header can pick
    ranges = parse_accept(accept)
    if not ranges:
        return default
    # For each mode: (q, specificity) of the most specific range that matches it.
    scores: dict[Mode, tuple[float, int]] = {}
    for mode, media_type in MEDIA_TYPES.items():
        matches = [(spec, q) for pattern, q in ranges if (spec := _specificity(pattern, media_type)) >= 0]
        if matches:
            spec, q = max(matches)
            scores[mode] = (q, spec)
    wanted = [mode for mode, (q, _) in scores.items() if q > 0]
    usable = [mode for mode in wanted if mode in accepted]
    if usable:
        # Highest q; then the most specific match; then the view's default; then declaration order.
        order = list(Mode)
        return max(usable, key=lambda m: (*scores[m], m is default, -order.index(m)))
    if wanted:  # it asks only for what this endpoint does not answer (application/json of a stream-only view)
        raise _not_acceptable("The Accept header asks for " + ", ".join(MEDIA_TYPES[m] for m in wanted), allowed)
    refused = {mode for mode, (q, _) in scores.items() if q == 0}
    if default not in refused:
        return default  # Accept names nothing we serve (e.g. only text/html): answer as usual.
    for mode in accepted:
        if mode not in refused:
            return mode
    raise NegotiationError(
        "The Accept header refuses every available format: " + ", ".join(MEDIA_TYPES[m] for m in accepted),
        status=406,
        allowed=allowed,
    )


def parse_accept(header: str) -> list[tuple[str, float]]:
    """``[(media range, q)]`` from an ``Accept`` header; malformed ranges are skipped, not fatal."""
    ranges = []
    for part in header.split(","):
        media_range, *params = (piece.strip() for piece in part.split(";"))
        media_range = media_range.lower()
        if media_range.count("/") != 1 or not all(media_range.split("/")):
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = -1.0
        if 0.0 <= q <= 1.0:
            ranges.append((media_range, q))
    return ranges


def _specificity(pattern: str, media_type: str) -> int:
    """2 for an exact match, 1 for ``type/*``, 0 for ``*/*``, -1 if the range does not match."""
    if pattern == media_type:
        return 2
    if pattern == "*/*":
        return 0
    kind, _, subtype = pattern.partition("/")
    if subtype == "*" and media_type.startswith(kind + "/"):
        return 1
    return -1


def _names_a_stream(accept: str) -> bool:
    """Whether ``Accept`` names a streamed type itself (not through a wildcard) with q > 0."""
    streamed = (MEDIA_TYPES[Mode.SSE], MEDIA_TYPES[Mode.NDJSON])
    return any(q > 0 and pattern in streamed for pattern, q in parse_accept(accept))
