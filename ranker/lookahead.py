"""An in-memory mirror of the labelers' open pairs (their look-ahead slots), so a vote
needs no extra query.

The engine keeps each open pair (an assignment) in SQLite; this process is the only
one that hands them out (:meth:`ranker.session.ProjectSession.next_pair`), so after
the first read per labeler the mirror is exact: the session records every pair it
hands out and forgets every pair that is answered, skipped or refused. After a
restart the mirror is empty and is read back from the database. It keeps at most
``MAX_LABELERS`` labelers (least recently used go first; they are read back on
their next request), so a crowd of one-time visitors cannot grow it without bound.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_LABELERS = 20_000


@dataclass(frozen=True)
class OpenPair:
    """An open pair (:class:`ranker.schema.Assignment`) and the look-ahead slot it fills."""

    issued_at: float
    slot: int
    pair_id: str
    left_uid: str
    right_uid: str

    @classmethod
    def of(cls, a, slot: int) -> OpenPair:
        return cls(a.issued_at, slot, a.pair_id, a.left_uid, a.right_uid)


class OpenPairs:
    """(project, labeler) -> {slot: OpenPair}; thread-safe."""

    def __init__(self) -> None:
        self._by_labeler: OrderedDict[tuple[str, str], dict[int, OpenPair]] = OrderedDict()
        self._by_pair: dict[tuple[str, str], tuple[str, str]] = {}  # (project, pair) -> key
        self._lock = threading.Lock()

    def get(self, project: str, labeler: str, load: Callable[[], list[OpenPair]]) -> list[OpenPair]:
        """The labeler's open pairs, oldest first; ``load`` reads them on first use."""
        key = (project, labeler)
        with self._lock:
            slots = self._by_labeler.get(key)
            if slots is not None:
                self._by_labeler.move_to_end(key)
        if slots is None:
            loaded = load()
            with self._lock:
                slots = self._by_labeler.setdefault(key, {})
                for p in loaded:
                    self._put(key, p)
        with self._lock:
            return sorted(slots.values(), key=lambda p: p.issued_at)

    def put(self, project: str, labeler: str, pair: OpenPair) -> None:
        with self._lock:
            self._by_labeler.setdefault((project, labeler), {})
            self._put((project, labeler), pair)

    def _put(self, key: tuple[str, str], pair: OpenPair) -> None:
        slots = self._by_labeler[key]
        while len(self._by_labeler) > MAX_LABELERS:
            (project, _), gone = self._by_labeler.popitem(last=False)
            for p in gone.values():
                self._by_pair.pop((project, p.pair_id), None)
        old = slots.get(pair.slot)
        if old is not None:
            self._by_pair.pop((key[0], old.pair_id), None)
        slots[pair.slot] = pair
        self._by_pair[(key[0], pair.pair_id)] = key

    def drop_pair(self, project: str, pair_id: str, labeler: str | None = None) -> None:
        """Forget a pair that is answered, skipped or no longer open; with ``labeler``,
        only if it was that labeler's (a refused answer must not drop someone's pair)."""
        with self._lock:
            key = self._by_pair.get((project, pair_id))
            if key is None or (labeler is not None and key[1] != labeler):
                return
            del self._by_pair[(project, pair_id)]
            slots = self._by_labeler.get(key, {})
            for slot, p in list(slots.items()):
                if p.pair_id == pair_id:
                    del slots[slot]

    def drop_project(self, project: str) -> None:
        with self._lock:
            for key in [k for k in self._by_labeler if k[0] == project]:
                del self._by_labeler[key]
            for key in [k for k in self._by_pair if k[0] == project]:
                del self._by_pair[key]

    def forget(self, project: str, labeler: str) -> None:
        """Drop one labeler's mirror (the engine changed its pairs, as undo does); the
        next ``get`` reads them back."""
        with self._lock:
            for p in self._by_labeler.pop((project, labeler), {}).values():
                self._by_pair.pop((project, p.pair_id), None)
