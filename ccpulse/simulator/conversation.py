"""The message turns of one chat, SMS, social or email conversation."""

from __future__ import annotations

import random

from ccpulse.simulator import texts
from ccpulse.simulator.timeline import Fields, Timeline


class Conversation:
    """Commit `message` events for one contact; customer tone follows its mood."""

    def __init__(
        self, timeline: Timeline, rng: random.Random, fields: Fields, sentiment_share: float
    ) -> None:
        self.timeline = timeline
        self.rng = rng
        self.fields = fields  # the contact's common fields, agent_id included once known
        self.sentiment_share = sentiment_share

    def customer(self, when: float, text: str, mood: float) -> None:
        """Commit a customer turn; some carry a vendor sentiment score, most leave it to us."""
        message = {**self.fields, "speaker": "customer", "text": text}
        if self.rng.random() < self.sentiment_share:
            message["sentiment"] = texts.sentiment(mood, self.rng)
        self.timeline.emit(when, "message", message)

    def agent(self, when: float, text: str) -> None:
        """Commit an agent turn."""
        self.timeline.emit(when, "message", {**self.fields, "speaker": "agent", "text": text})

    def live(
        self,
        *,
        start: float,
        end: float,
        turns: int,
        mood: float,
        waited_long: bool,
        resolved: bool,
        transfer: bool,
    ) -> float:
        """Commit the turns of a live conversation between `start` and `end`.

        The agent greets, customer and agent alternate, and the customer's tone drifts from
        `mood` towards the outcome: pleased when resolved, annoyed when not. Returns the time
        of the agent's greeting.
        """
        rng = self.rng
        times = sorted(rng.uniform(start, end) for _ in range(max(turns, 2)))
        target = 0.6 if resolved else -0.6
        for index, when in enumerate(times):
            last = index == len(times) - 1
            progress = index / len(times)
            felt = mood + (target - mood) * progress * (0.3 if transfer else 1.0)
            if index == 0:
                self.agent(when, rng.choice(texts.AGENT_GREETINGS))
            elif last and transfer:
                self.agent(when, rng.choice(texts.AGENT_TRANSFERS))
            elif last:
                self.customer(when, texts.closing(resolved, rng), target)
            elif index == 1 and waited_long:
                self.customer(when, rng.choice(texts.WAIT_COMPLAINTS), min(felt, -0.5))
            elif index % 2:
                self.customer(when, texts.follow_up(felt, rng), felt)
            else:
                self.agent(when, rng.choice(texts.AGENT_TURNS))
        return times[0]
