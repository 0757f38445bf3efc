"""Keeps personal data out of every log record, whatever a future change prints.

Installed as the process-wide log record factory, so it sees every record from every logger
(ours, Prefect's, libraries') before any handler — including Prefect's API log handler that
ships logs to the server. It masks (1) every value registered as sensitive when a report was
validated or decrypted, (2) anything shaped like a personnummer/samordningsnummer, and
(3) every e-mail address (logs name units by id, never by address).

Cost does not grow with the number of reports a process has read. Registered values live in a
trie keyed by 4-character chunks, so registering a value costs O(its length) and masking a log
line costs O(line length) — a dictionary lookup per position, and at a hit a walk bounded by
the value's length — never a pass over all values, and nothing is ever recompiled.

Which values are held:
- values registered inside a :func:`scope` (one per flow run or request) are pinned while the
  scope lives: no amount of registering elsewhere can evict them;
- values registered outside any scope, and a scope's values once it ends, join a process-wide
  list of the most recent ``_MAX_VALUES`` values and are masked everywhere (every thread, every
  context) until newer values push them out.
So a value is masked in every log line of its own scope and, for a long while after, in every
other line of the process.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from urllib.parse import unquote

MASK = "[skyddat]"
_MIN_LEN = 4
_MAX_VALUES = 20_000  # recent values kept once no scope pins them
_CHUNK = 4  # trie edge length; equal to _MIN_LEN, so every value has a first chunk
_BUCKET_MAX = 8  # values kept unsplit in a node before it branches on its next chunk

_PNR = re.compile(r"(?<!\d)(?:\d{2})?\d{6}[-+ ]?\d{4}(?!\d)")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


class _Node:
    """Values that share their first ``depth`` characters.

    ``short`` holds the values that end inside the next chunk (``depth <= len < depth + 4``) as
    ``(lengths longest first, frozenset)``; longer values sit unsplit in ``bucket`` until there
    are more than ``_BUCKET_MAX`` of them, then in ``kids`` keyed by their next chunk.

    Readers take no lock: tuples and frozensets are replaced whole, a child is built before it
    is published, and ``kids`` only sees single (atomic) dict operations, so a reader sees the
    old or the new state — at worst it misses the value being added at that very moment.
    """

    __slots__ = ("depth", "short", "bucket", "kids")

    def __init__(self, depth: int, split: bool = False) -> None:
        self.depth = depth
        self.short: tuple[tuple[int, ...], frozenset[str]] = ((), frozenset())
        self.bucket: tuple[str, ...] | None = None if split else ()
        self.kids: dict[str, _Node] | None = {} if split else None

    def empty(self) -> bool:
        return not self.short[1] and not self.bucket and not self.kids


class _Trie:
    """Leftmost-longest masking of many literal strings; mutate under the module lock."""

    def __init__(self) -> None:
        self.root = _Node(0, split=True)

    def add(self, value: str, node: _Node | None = None) -> None:
        node = self.root if node is None else node
        while True:
            d = node.depth
            if len(value) < d + _CHUNK:
                _, values = node.short
                values = values | {value}
                node.short = (tuple(sorted({len(v) for v in values}, reverse=True)), values)
                return
            if node.kids is None:
                bucket = (*(node.bucket or ()), value)
                if len(bucket) <= _BUCKET_MAX:
                    node.bucket = tuple(sorted(bucket, key=len, reverse=True))
                    return
                self._split(node, bucket)
                return
            key = value[d : d + _CHUNK]
            child = node.kids.get(key)
            if child is None:
                child = _Node(d + _CHUNK)
                self.add(value, child)
                node.kids[key] = child  # published only once complete
                return
            node = child

    def _split(self, node: _Node, bucket: tuple[str, ...]) -> None:
        d = node.depth
        kids: dict[str, _Node] = {}
        for v in bucket:
            key = v[d : d + _CHUNK]
            if key not in kids:
                kids[key] = _Node(d + _CHUNK)
            self.add(v, kids[key])
        node.kids = kids  # readers may briefly see both bucket and kids: checked twice, harmless
        node.bucket = None

    def remove(self, value: str) -> None:
        path: list[tuple[_Node, str]] = []
        node = self.root
        while True:
            d = node.depth
            if len(value) < d + _CHUNK:
                _, values = node.short
                if value in values:
                    values = values - {value}
                    node.short = (tuple(sorted({len(v) for v in values}, reverse=True)), values)
                break
            if node.kids is None:
                node.bucket = tuple(v for v in node.bucket or () if v != value)
                break
            key = value[d : d + _CHUNK]
            child = node.kids.get(key)
            if child is None:
                return
            path.append((node, key))
            node = child
        # Prune emptied nodes so memory follows the values held, not the values ever seen.
        while path and node.empty():
            parent, key = path.pop()
            if parent.kids is not None:
                parent.kids.pop(key, None)  # dict operations are atomic for readers
            node = parent

    def longest_at(self, node: _Node, text: str, i: int) -> int:
        """Length of the longest value starting at ``text[i]``, given its first chunk's node."""
        best = 0
        while True:
            d = node.depth
            bucket = node.bucket
            if bucket:
                for v in bucket:  # longest first
                    if text.startswith(v, i):
                        best = max(best, len(v))
                        break
            lengths, values = node.short
            for n in lengths:  # longest first; all shorter than anything in bucket or kids
                if n > best and text[i : i + n] in values:
                    best = n
                    break
            kids = node.kids
            if not kids:
                return best
            nxt = kids.get(text[i + d : i + d + _CHUNK])
            if nxt is None:
                return best
            node = nxt

    def mask(self, text: str) -> str:
        kids = self.root.kids
        n = len(text) - _CHUNK + 1
        if not kids or n <= 0:
            return text
        hits = [i for i in range(n) if text[i : i + _CHUNK] in kids]  # starts of some value
        if not hits:
            return text
        out: list[str] = []
        last = 0
        for i in hits:
            if i < last:
                continue  # inside a value already masked
            node = kids.get(text[i : i + _CHUNK])
            if node is None:  # removed meanwhile
                continue
            length = self.longest_at(node, text, i)
            if length:
                out += (text[last:i], MASK)
                last = i + length
        if not out:
            return text
        out.append(text[last:])
        return "".join(out)


class _Scope:
    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values: set[str] = set()


_lock = threading.Lock()
_trie = _Trie()
_recent: OrderedDict[str, None] = OrderedDict()  # unpinned recency order, oldest first
_pins: dict[str, int] = {}  # value -> number of live scopes holding it
_scope: ContextVar[_Scope | None] = ContextVar("orosflow_redaction_scope", default=None)


def _parts(values: Iterable[str | None]) -> set[str]:
    out: set[str] = set()
    for value in values:
        if not value:
            continue
        for part in {value.strip(), *value.split("\n")}:
            part = part.strip()
            if len(part) >= _MIN_LEN:
                out.add(part)
    return out


def _held(value: str) -> bool:
    return value in _pins or value in _recent


def _remember(value: str) -> None:
    """Make ``value`` the most recent unpinned value (lock held)."""
    if value in _recent:
        _recent.move_to_end(value)
        return
    if value not in _pins:
        _trie.add(value)
    _recent[value] = None


def _evict() -> None:
    while len(_recent) > _MAX_VALUES:
        value, _ = _recent.popitem(last=False)
        if value not in _pins:
            _trie.remove(value)


def register_sensitive(values: Iterable[str | None]) -> None:
    """Remember strings that must never appear in a log line.

    Inside a :func:`scope` they are held at least until it ends; otherwise among the
    ``_MAX_VALUES`` most recent. Each line of a multi-line value is registered too.
    """
    parts = _parts(values)
    if not parts:
        return
    current = _scope.get()
    with _lock:
        if current is None:
            for part in parts:
                _remember(part)
            _evict()
            return
        for part in parts - current.values:
            current.values.add(part)
            if not _held(part):
                _trie.add(part)
            _pins[part] = _pins.get(part, 0) + 1


@contextmanager
def scope() -> Iterator[None]:
    """Hold the values registered inside (one flow run, one request) until it ends.

    The scope is carried by a context variable, so tasks, ``asyncio.to_thread`` calls and
    coroutines started inside share it. When it ends its values join the process-wide recent
    values instead of being forgotten.
    """
    current = _Scope()
    token = _scope.set(current)
    try:
        yield
    finally:
        _scope.reset(token)
        with _lock:
            for value in current.values:
                left = _pins[value] - 1
                if left:
                    _pins[value] = left
                    continue
                del _pins[value]
                _recent[value] = None
                _recent.move_to_end(value)
            _evict()
            current.values.clear()


def held_count() -> int:
    """How many distinct values are masked right now (for tests and benchmarks)."""
    with _lock:
        return len(_pins.keys() | _recent.keys())


def redact(text: str) -> str:
    text = _PNR.sub(MASK, _trie.mask(text))
    return _EMAIL.sub(MASK, text) if "@" in text else text


#: Values that may stand in a logged address as they are: a reference number, a UUID, and in a
#: query a number of at most 4 digits (a page, a municipality code). Anything else must be one
#: of the words the portal itself uses in its addresses (:func:`register_path_words`).
_PATH_KEEP = re.compile(
    r"^(OA-\d{4}-\d{6}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$", re.I
)
_SHORT_NUMBER = re.compile(r"^\d{1,4}$")
_path_words: frozenset[str] = frozenset({"api", "v1", "static", "healthz"})


def register_path_words(words: Iterable[str]) -> None:
    """Add words an address of the application may hold (its routes' literal segments, query
    parameter names, filter values) to those a logged address keeps."""
    global _path_words
    _path_words = _path_words | {w for w in words if w}


def _known(part: str) -> bool:
    return unquote(part) in _path_words or bool(_PATH_KEEP.match(part))


def redact_path(path: str) -> str:
    """An address fit for a log line: reference numbers, UUIDs and the application's own words
    stay, every other path segment, query name and query value is masked
    (``/api/v1/inbox/20130407-1234`` -> ``/api/v1/inbox/[skyddat]``): what a person typed into
    an address can be a personnummer or a name, whatever its shape."""
    path, sep, query = path.partition("?")
    out = "/".join(seg if not seg or _known(seg) else MASK for seg in path.split("/"))
    if not sep:
        return out
    params = []
    for pair in query.split("&"):
        name, eq, value = pair.partition("=")
        name = name if _known(name) else MASK
        if eq and not (_known(value) or _SHORT_NUMBER.match(value)):
            value = MASK
        params.append(name + eq + value)
    return out + "?" + "&".join(params)


def _structured_args(record: logging.LogRecord) -> tuple[object, ...] | None:
    """Masked args for records whose formatter unpacks them (uvicorn's access log reads
    ``(client, method, path, http_version, status)``), or ``None`` to flatten the record."""
    args = record.args
    if record.name != "uvicorn.access" or not isinstance(args, tuple) or len(args) != 5:
        return None
    client, method, path, version, status = args
    masked = (redact(str(client)), redact(str(method)), redact(redact_path(str(path))))
    return (*masked, redact(str(version)), status if isinstance(status, int) else 0)


def _wrap_factory(factory):  # type: ignore[no-untyped-def]
    def make_record(*args, **kwargs) -> logging.LogRecord:  # type: ignore[no-untyped-def]
        record = factory(*args, **kwargs)
        structured = _structured_args(record)
        if structured is not None:
            record.args = structured
        else:
            try:
                message = record.getMessage()
            except Exception:  # a broken format string must not lose the record
                message = str(record.msg)
            # Formatted now, with every value masked; formatters that need ``args`` are
            # handled above (setting ``args = None`` under them broke every access line).
            record.msg, record.args = redact(message), None
        if record.exc_info:
            formatted = logging.Formatter().formatException(record.exc_info)
            record.exc_text, record.exc_info = redact(formatted), None
        return record

    make_record.__orosflow_redacting__ = True  # type: ignore[attr-defined]
    return make_record


def install() -> None:
    """Install the redacting record factory once per process (idempotent)."""
    current = logging.getLogRecordFactory()
    if not getattr(current, "__orosflow_redacting__", False):
        logging.setLogRecordFactory(_wrap_factory(current))
