"""The order in which the twin's RUNNABLE Batch jobs start, and the room they start in.

A job waits RUNNABLE until one of its queue's compute environments (in the
queue's order) has room for its vCPUs, memory and GPUs, and the twin's machine
has a free slot (`host_slots` attempts at once, whatever their environment).
A queue without a scheduling policy is FIFO. A fair-share queue starts next the
job of the share identifier with the lowest weighted usage (its weight factor x
the vCPUs it holds now plus its average vCPUs over the share decay window);
within one share, the highest scheduling priority first, then the oldest. A
fair-share queue with a compute reservation keeps (computeReservation/100) **
active shares of its vCPUs free, for shares not yet running. Capacity comes
back when an attempt ends. Queues are served by priority, as Batch evaluates
queues that share a compute environment.
"""

from __future__ import annotations

import fnmatch
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .batch_capacity import EnvironmentCapacity, Resources


@dataclass(frozen=True)
class SharePolicy:
    """A fair-share scheduling policy, as DescribeSchedulingPolicies returns its `fairsharePolicy`."""

    weights: tuple[tuple[str, float], ...] = ()
    """(shareIdentifier, weightFactor); an identifier ending in `*` covers the shares it prefixes."""
    decay_seconds: float = 0.0
    """The usage window (shareDecaySeconds, already scaled to the twin's time); 0: current usage only."""
    compute_reservation: int = 0

    @classmethod
    def from_api(cls, policy: dict, time_scale: float = 1.0) -> SharePolicy:
        weights = tuple((str(item["shareIdentifier"]), float(item.get("weightFactor", 1.0)))
                        for item in policy.get("shareDistribution", []))
        return cls(weights, float(policy.get("shareDecaySeconds") or 0) * time_scale,
                   int(policy.get("computeReservation") or 0))

    def weight(self, share: str) -> float:
        """The share's weight factor: its own entry, else a matching `prefix*` entry, else 1.0 (Batch's default)."""
        for identifier, weight in self.weights:
            if identifier == share:
                return weight
        for identifier, weight in self.weights:
            if identifier.endswith("*") and fnmatch.fnmatchcase(share, identifier):
                return weight
        return 1.0


@dataclass
class Ticket:
    """One RUNNABLE attempt's claim on capacity."""

    job_id: str
    queue: str
    share: str | None
    priority: int
    needs: Resources
    sequence: int
    submitted: float
    environment: str | None = None
    """The compute environment it was placed in ("" for a queue the scheduler does not know)."""
    started: float | None = None
    ended: float | None = None
    granted: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Queue:
    name: str
    priority: int
    environments: list[str]
    policy: SharePolicy | None


class BatchScheduler:
    """Compute environments, queues, and the RUNNABLE jobs waiting on them (thread-safe)."""

    def __init__(self, host_slots: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.host_slots = host_slots
        self.clock = clock
        self.environments: dict[str, EnvironmentCapacity] = {}
        self.queues: dict[str, _Queue] = {}
        self.started: list[Ticket] = []
        """Every attempt in the order it started (tests and the docs count dispatches from it)."""
        self._waiting: list[Ticket] = []
        self._running: list[Ticket] = []
        self._history: list[Ticket] = []  # ended attempts still inside some queue's decay window
        self._sequence = itertools.count()
        self._lock = threading.Lock()

    def add_environment(self, name: str, capacity: EnvironmentCapacity) -> None:
        with self._lock:
            self.environments[name] = capacity

    def add_queue(self, name: str, environments: list[str], priority: int = 1,
                  policy: SharePolicy | None = None) -> None:
        with self._lock:
            self.queues[name] = _Queue(name, priority, environments, policy)

    def fits(self, queue: str, needs: Resources) -> bool:
        """Whether any of the queue's compute environments could ever run the job (else it is misconfigured)."""
        known = self.queues.get(queue)
        if known is None or not known.environments:
            return True
        return any(needs.fits_in(self.environments[name].maximum) for name in known.environments
                   if name in self.environments)

    # -- a job's wait -----------------------------------------------------------

    def submit(self, job_id: str, queue: str, share: str | None, priority: int, needs: Resources) -> Ticket:
        """Queue an attempt RUNNABLE; it starts as soon as its turn and the capacity come."""
        ticket = Ticket(job_id, queue, share, priority, needs, next(self._sequence), self.clock())
        with self._lock:
            self._waiting.append(ticket)
            self._dispatch()
        return ticket

    def wait(self, ticket: Ticket, stopped: Callable[[], bool], poll: float = 0.05) -> bool:
        """Block until the ticket starts (True) or `stopped()` says the job was terminated (False)."""
        while not ticket.granted.wait(poll):
            if stopped():
                with self._lock:
                    if not ticket.granted.is_set():
                        self._waiting.remove(ticket)
                        self._dispatch()  # it may have held its queue's head
                        return False
                self.release(ticket)  # it started just now: give the room back
                return False
        return True

    def release(self, ticket: Ticket) -> None:
        """The attempt ended: its capacity is free again, its usage stays for the decay window."""
        with self._lock:
            if ticket not in self._running:
                return
            self._running.remove(ticket)
            ticket.ended = self.clock()
            environment = self.environments.get(ticket.environment or "")
            if environment is not None:
                environment.used = environment.used - ticket.needs
            self._history.append(ticket)
            self._dispatch()

    def waiting(self) -> list[str]:
        """The ids of the jobs waiting RUNNABLE for their turn or for room, oldest first."""
        with self._lock:
            return [ticket.job_id for ticket in self._waiting]

    def usage(self, queue: str, share: str | None) -> float:
        """A share's usage in a queue, in vCPUs: what it holds now plus its average over the decay window."""
        with self._lock:
            return self._usage(self.queues.get(queue), share, self.clock())

    # -- dispatching (under the lock) ---------------------------------------------

    def _dispatch(self) -> None:
        """Start what may start: the highest-priority queue's next job first, again until nothing fits."""
        horizon = self.clock() - self._longest_window()
        self._history = [t for t in self._history if t.ended is not None and t.ended > horizon]
        while self._waiting and len(self._running) < self.host_slots:
            for ticket in self._heads():
                environment = self._place(ticket)
                if environment is not None:
                    self._start(ticket, environment)
                    break
            else:
                return

    def _heads(self) -> list[Ticket]:
        """Each queue's next job in its own order, queues by priority (a head that does not fit holds its queue)."""
        by_queue: dict[str, list[Ticket]] = {}
        for ticket in self._waiting:
            by_queue.setdefault(ticket.queue, []).append(ticket)
        now = self.clock()
        heads = [self._next(self.queues.get(name), tickets, now) for name, tickets in by_queue.items()]
        return sorted(heads, key=lambda t: (-self._queue_priority(t.queue), t.sequence))

    def _queue_priority(self, queue: str) -> int:
        known = self.queues.get(queue)
        return known.priority if known else 0

    def _next(self, queue: _Queue | None, tickets: list[Ticket], now: float) -> Ticket:
        if queue is None or queue.policy is None:
            return min(tickets, key=lambda t: t.sequence)
        policy = queue.policy
        oldest: dict[str | None, int] = {}
        for ticket in tickets:
            oldest[ticket.share] = min(oldest.get(ticket.share, ticket.sequence), ticket.sequence)
        share = min(oldest, key=lambda s: (policy.weight(s or "") * self._usage(queue, s, now), oldest[s]))
        return min((t for t in tickets if t.share == share), key=lambda t: (-t.priority, t.sequence))

    def _usage(self, queue: _Queue | None, share: str | None, now: float) -> float:
        if queue is None:
            return 0.0
        mine = [t for t in self._running + self._history if t.queue == queue.name and t.share == share]
        current = sum(t.needs.vcpus for t in mine if t.ended is None)
        window = queue.policy.decay_seconds if queue.policy else 0.0
        if window <= 0:
            return current
        since = now - window
        held = sum(t.needs.vcpus * (min(t.ended or now, now) - max(t.started or now, since))
                   for t in mine if (t.ended or now) > since)
        return current + held / window

    def _longest_window(self) -> float:
        return max((q.policy.decay_seconds for q in self.queues.values() if q.policy), default=0.0)

    def _place(self, ticket: Ticket) -> str | None:
        """The first of the queue's compute environments with room for the ticket ("" for an unknown queue)."""
        queue = self.queues.get(ticket.queue)
        if queue is None or not queue.environments:
            return ""
        if not self._within_reservation(queue, ticket):
            return None
        for name in queue.environments:
            environment = self.environments.get(name)
            if environment is not None and environment.has_room(ticket.needs):
                return name
        return None

    def _within_reservation(self, queue: _Queue, ticket: Ticket) -> bool:
        """A compute reservation keeps (reservation/100)**active shares of the queue's vCPUs for idle shares."""
        if queue.policy is None or queue.policy.compute_reservation <= 0:
            return True
        active = {t.share for t in self._waiting + self._running if t.queue == queue.name}
        total = sum(self.environments[n].limit.vcpus for n in queue.environments if n in self.environments)
        reserved = total * (queue.policy.compute_reservation / 100) ** max(1, len(active))
        held = sum(t.needs.vcpus for t in self._running if t.queue == queue.name)
        return held == 0 or held + ticket.needs.vcpus <= total - reserved

    def _start(self, ticket: Ticket, environment: str) -> None:
        self._waiting.remove(ticket)
        ticket.environment = environment
        ticket.started = self.clock()
        placed = self.environments.get(environment)
        if placed is not None:
            placed.used = placed.used + ticket.needs
        self._running.append(ticket)
        self.started.append(ticket)
        ticket.granted.set()
