"""Sign-in throttling that slows a guesser without locking the real user out.

Failures are counted per (account name, client address) pair: after ``PAIR_FREE_FAILURES`` the
pair must wait 1 s, 2 s, 4 s … (at most ``PAIR_MAX_WAIT_S``) before its next attempt is even
checked. Someone hammering an account from one address therefore slows only that address's
attempts on that account; the account's owner elsewhere signs in as usual. A success clears its
pair. Each address also has a loose budget of failures (``ADDRESS_FAILURES`` per
``ADDRESS_WINDOW_S``, enough for a clinic whose staff share one NAT address) against guessing
across many accounts; successful sign-ins never count against it.

The state is in memory (the portal is one process) and bounded: pairs quiet for
``PAIR_FORGET_S`` are forgotten, and at most ``MAX_PAIRS`` are kept (the oldest go first).
Unknown account names are throttled exactly like real ones, so throttling reveals nothing.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

#: Failures a pair may have before it has to wait.
PAIR_FREE_FAILURES = 5
#: The longest wait between two attempts of one pair.
PAIR_MAX_WAIT_S = 15 * 60
#: A pair without a failure for this long starts afresh.
PAIR_FORGET_S = 24 * 3600
#: Failed sign-ins allowed from one client address within ``ADDRESS_WINDOW_S`` seconds.
ADDRESS_FAILURES = 100
ADDRESS_WINDOW_S = 15 * 60
#: Pairs kept in memory at most.
MAX_PAIRS = 50_000


@dataclass
class _Pair:
    failures: int = 0
    last_failure: float = 0.0
    retry_at: float = 0.0


class LoginThrottle:
    """Failure counts per (account, address) pair and per address, for one portal process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._pairs: OrderedDict[tuple[str, str], _Pair] = OrderedDict()
        self._addresses: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    # --- per address --------------------------------------------------------------------

    def address_blocked(self, client: str) -> bool:
        """True when ``client`` has used up its failure budget for the window."""
        with self._lock:
            return len(self._recent(client)) >= ADDRESS_FAILURES

    def _recent(self, client: str) -> deque[float]:
        q = self._addresses.get(client)
        if q is None:
            return deque()
        cutoff = self.clock() - ADDRESS_WINDOW_S
        while q and q[0] <= cutoff:
            q.popleft()
        if not q:
            del self._addresses[client]
        return q

    # --- per pair -----------------------------------------------------------------------

    def wait_left(self, account: str, client: str) -> float:
        """Seconds before this pair may try again (0: it may try now)."""
        with self._lock:
            pair = self._pair(account, client)
            return max(0.0, pair.retry_at - self.clock()) if pair else 0.0

    def failed(self, account: str, client: str) -> tuple[int, float]:
        """Count a failure of the pair and its address; ``(failures, seconds it must now wait)``."""
        now = self.clock()
        with self._lock:
            self._addresses.setdefault(client, deque()).append(now)
            key = (account, client)
            pair = self._pair(account, client) or _Pair()
            pair.failures += 1
            pair.last_failure = now
            wait = 0.0
            if pair.failures >= PAIR_FREE_FAILURES:
                wait = float(min(2 ** min(pair.failures - PAIR_FREE_FAILURES, 20), PAIR_MAX_WAIT_S))
                pair.retry_at = now + wait
            self._pairs[key] = pair
            self._pairs.move_to_end(key)
            while len(self._pairs) > MAX_PAIRS:
                self._pairs.popitem(last=False)
            return pair.failures, wait

    def refused(self, client: str) -> None:
        """An attempt refused while its pair waits: counts against the address only."""
        with self._lock:
            self._addresses.setdefault(client, deque()).append(self.clock())

    def succeeded(self, account: str, client: str) -> None:
        """A success clears its pair (and is not counted against the address)."""
        with self._lock:
            self._pairs.pop((account, client), None)

    def _pair(self, account: str, client: str) -> _Pair | None:
        pair = self._pairs.get((account, client))
        if pair is not None and self.clock() - pair.last_failure > PAIR_FORGET_S:
            del self._pairs[(account, client)]
            return None
        return pair

    def reset(self) -> None:
        with self._lock:
            self._pairs.clear()
            self._addresses.clear()
