"""The customer population: who contacts us, who comes back, joins, leaves and buys."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from ccpulse.simulator.profile import DAY_SECONDS
from ccpulse.simulator.scenario import Scenario
from ccpulse.simulator.timeline import Timeline

VIP_PERCENT = 5  # share of customers whose contacts are offered with priority 1


def customer_id(number: int) -> str:
    """Return the public id of customer `number`."""
    return f"cust-{number:06d}"


def is_vip(number: int) -> bool:
    """Say whether a customer is a VIP (a fixed 5 % of them, scattered over the ids)."""
    return (number * 2654435761) % 100 < VIP_PERCENT


class Customers:
    """Pick the customer behind each contact and run the joined / left / purchase processes."""

    def __init__(
        self, scenario: Scenario, timeline: Timeline, rng: random.Random, population: int
    ) -> None:
        self.scenario = scenario
        self.timeline = timeline
        self.rng = rng
        self._next = population  # customers 0 .. population-1 exist at the start
        self._left: set[int] = set()
        self._recent: list[tuple[float, int]] = []  # (contact time, customer), oldest first
        self._recent_head = 0
        self._last_contact: dict[int, float] = {}
        self._window = scenario.fcr_repeat_days * DAY_SECONDS

    @property
    def active(self) -> int:
        """Return the number of current customers."""
        return self._next - len(self._left)

    def start(self) -> None:
        """Start the joined, left and purchase processes."""
        s = self.scenario
        self._every(s.joins_per_customer_per_day, self._join)
        self._every(s.churn_per_customer_per_day, self._churn)
        self._every(s.purchases_per_customer_per_day, self._purchase)

    def pick(self) -> tuple[int, bool]:
        """Return the customer behind a new contact and whether it repeats a recent contact."""
        now = self.timeline.now
        number = self._returning(now) if self.rng.random() < self.scenario.repeat_share else None
        if number is None:
            number = self._random_active()
        repeat = now - self._last_contact.get(number, -math.inf) < self._window
        self._last_contact[number] = now
        if len(self._last_contact) > 4 * (self.active + 1000):
            self._forget(now)
        return number, repeat

    def record(self, number: int, resolved: bool) -> None:
        """Remember a finished contact; unresolved ones are twice as likely to come back."""
        entry = (self.timeline.now, number)
        self._recent.append(entry)
        if not resolved:
            self._recent.append(entry)

    def leave(self, number: int, when: float) -> None:
        """Emit customer.left at `when` (a churn, or a cancellation on a retention queue)."""
        if number not in self._left and number < self._next:
            self._left.add(number)
            self.timeline.emit(when, "customer.left", {"customer_id": customer_id(number)})

    def purchase(self, number: int, when: float, amount: float | None = None) -> None:
        """Emit a purchase by the customer at `when`."""
        fields: dict[str, object] = {"customer_id": customer_id(number)}
        value = amount if amount is not None else self.rng.lognormvariate(math.log(45.0), 0.8)
        fields["amount"] = round(value, 2)
        draw = self.rng.random()
        if draw < 0.8:
            fields["currency"] = self.scenario.currency
        elif draw < 0.95:
            fields["currency"] = "GBP" if self.scenario.currency == "EUR" else "EUR"
        self.timeline.emit(when, "purchase", fields)

    def _returning(self, now: float) -> int | None:
        """Return a customer with a contact in the last `fcr_repeat_days`, if any."""
        while self._recent_head < len(self._recent) and (
            now - self._recent[self._recent_head][0] > self._window
        ):
            self._recent_head += 1
        if self._recent_head > 10_000 and self._recent_head * 2 > len(self._recent):
            del self._recent[: self._recent_head]
            self._recent_head = 0
        if self._recent_head == len(self._recent):
            return None
        number = self._recent[self.rng.randrange(self._recent_head, len(self._recent))][1]
        return None if number in self._left else number

    def _random_active(self) -> int:
        while True:
            number = self.rng.randrange(self._next)
            if number not in self._left:
                return number

    def _forget(self, now: float) -> None:
        """Drop last-contact times older than the repeat window (keeps memory flat)."""
        self._last_contact = {
            number: seen for number, seen in self._last_contact.items() if now - seen < self._window
        }

    def _every(self, per_customer_per_day: float, action: Callable[[], None]) -> None:
        """Run `action` as a Poisson process whose rate follows the population size."""
        if per_customer_per_day <= 0:
            return

        def tick() -> None:
            action()
            schedule()

        def schedule() -> None:
            rate = per_customer_per_day * max(self.active, 1) / DAY_SECONDS
            self.timeline.at(self.timeline.now + self.rng.expovariate(rate), tick)

        schedule()

    def _join(self) -> None:
        number = self._next
        self._next += 1
        fields = {"customer_id": customer_id(number)}
        self.timeline.emit(self.timeline.now, "customer.joined", fields)

    def _churn(self) -> None:
        if self.active > 1:
            self.leave(self._random_active(), self.timeline.now)

    def _purchase(self) -> None:
        self.purchase(self._random_active(), self.timeline.now)
