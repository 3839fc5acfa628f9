"""The life of a contact: offered, waited, abandoned or answered, transferred, ended, wrapped."""

from __future__ import annotations

import itertools
import math
import random

from ccpulse.simulator import texts
from ccpulse.simulator.agents import Agent, Floor
from ccpulse.simulator.conversation import Conversation
from ccpulse.simulator.customers import Customers, customer_id, is_vip
from ccpulse.simulator.outcomes import Outcomes
from ccpulse.simulator.routing import Contact, Router
from ccpulse.simulator.scenario import ChannelProfile, QueueSpec, Scenario
from ccpulse.simulator.timeline import Fields, Timeline

SHORT_ABANDON_SECONDS = 5.0
TRANSFER_WRAP_SECONDS = (5.0, 20.0)


class ContactFlow:
    """Drive every contact through SPEC §1's contact events."""

    def __init__(
        self,
        scenario: Scenario,
        timeline: Timeline,
        rng: random.Random,
        floor: Floor,
        customers: Customers,
        id_prefix: str,
    ) -> None:
        self.scenario = scenario
        self.timeline = timeline
        self.rng = rng
        self.floor = floor
        self.customers = customers
        self.router = Router(floor, self._serve)
        self.outcomes = Outcomes(scenario, timeline, rng, customers)
        self._ids = (f"{id_prefix}{n:06d}" for n in itertools.count(1))
        self._queues = {queue.name: queue for queue in scenario.queues}

    def arrive(self, queue: QueueSpec, profile: ChannelProfile) -> None:
        """Offer a new contact from a new or returning customer."""
        number, repeat = self.customers.pick()
        mood = max(-1.0, min(1.0, queue.mood + self.rng.gauss(0.0, 0.35)))
        now = self.timeline.now
        contact = Contact(
            contact_id=next(self._ids),
            customer_id=customer_id(number),
            queue=queue.name,
            profile=profile,
            priority=1 if is_vip(number) else 0,
            offered_at=now,
            customer_number=number,
            mood=mood,
            repeat=repeat,
        )
        opening = self._talk(contact)  # the customer writes before any agent is involved
        self._offer(contact)
        if profile.message_turns_mean:
            topic = queue.name if queue.name in texts.OPENERS else "general"
            opening.customer(now, texts.opener(topic, mood, self.rng), mood)

    def _fields(self, contact: Contact) -> Fields:
        fields: Fields = {
            "contact_id": contact.contact_id,
            "queue": contact.queue,
            "channel": contact.channel,
            "customer_id": contact.customer_id,
        }
        if contact.agent is not None:
            fields["agent_id"] = contact.agent.plan.agent_id
        return fields

    def _talk(self, contact: Contact) -> Conversation:
        share = self.scenario.sentiment_field_share
        return Conversation(self.timeline, self.rng, self._fields(contact), share)

    def _offer(self, contact: Contact) -> None:
        """Emit contact.offered for the current leg and put the contact in line."""
        fields = self._fields(contact)
        if contact.priority:
            fields["priority"] = contact.priority
        self.timeline.emit(self.timeline.now, "contact.offered", fields)
        profile = contact.profile
        if not profile.synchronous:
            delay = self.rng.expovariate(1.0 / profile.inbox_delay_mean_seconds)
            self.timeline.at(self.timeline.now + delay, lambda: self.router.enqueue(contact))
            return
        self.router.enqueue(contact)
        if contact.waiting and profile.patience_mean_seconds is not None:
            patience = self._patience(profile, profile.patience_mean_seconds)
            leg = contact.leg
            self.timeline.at(self.timeline.now + patience, lambda: self._abandon(contact, leg))

    def _patience(self, profile: ChannelProfile, mean_seconds: float) -> float:
        if self.rng.random() < profile.short_abandon_share:
            return self.rng.uniform(0.5, SHORT_ABANDON_SECONDS - 0.1)
        return self.rng.expovariate(1.0 / mean_seconds)

    def _abandon(self, contact: Contact, leg: int) -> None:
        if contact.waiting and contact.leg == leg:
            contact.waiting = False
            self.timeline.emit(self.timeline.now, "contact.abandoned", self._fields(contact))
            self.customers.record(contact.customer_number, resolved=False)

    def _serve(self, contact: Contact, agent: Agent) -> None:
        """Connect the contact to the agent and plan the conversation's course."""
        now, profile = self.timeline.now, contact.profile
        contact.agent = agent
        self.floor.occupy(agent, contact.units)
        contact.wait_ratio = (now - contact.offered_at) / profile.service_level_seconds
        target = self._transfer_target(contact)
        talk = self._talk_seconds(profile)
        if target is not None:
            talk *= self.rng.uniform(0.15, 0.4)
            self.timeline.at(now + talk, lambda: self._transfer(contact, target))
        else:
            queue = self._queues[contact.queue]
            contact.resolved = self.rng.random() < queue.resolve_probability
            hold = self._hold_seconds(profile)
            self.timeline.at(now + talk + hold, lambda: self._end(contact, hold))
        if profile.synchronous:
            self.timeline.emit(now, "contact.answered", self._fields(contact))
        first_reply = self._plan_messages(contact, now, talk, transfer=target is not None)
        if profile.name in ("sms", "social"):
            self.timeline.emit(first_reply, "contact.first_response", self._fields(contact))

    def _transfer_target(self, contact: Contact) -> str | None:
        """Return the queue this contact will be transferred to, if it will be."""
        queue = self._queues[contact.queue]
        if contact.transferred or self.rng.random() >= queue.transfer_probability:
            return None
        targets = [
            q.name
            for q in self.scenario.queues
            if q is not queue and contact.channel in q.peak_arrivals_per_hour
        ]
        return self.rng.choice(targets) if targets else None

    def _talk_seconds(self, profile: ChannelProfile) -> float:
        """Draw a log-normal conversation length with the channel's mean."""
        sigma = profile.talk_sigma
        mu = math.log(profile.talk_mean_seconds) - sigma * sigma / 2
        return self.rng.lognormvariate(mu, sigma)

    def _hold_seconds(self, profile: ChannelProfile) -> float:
        if self.rng.random() < profile.hold_probability:
            return self.rng.expovariate(1.0 / profile.hold_mean_seconds)
        return 0.0

    def _plan_messages(self, contact: Contact, now: float, talk: float, transfer: bool) -> float:
        """Commit the conversation's messages; return when the agent first writes."""
        profile = contact.profile
        if not profile.message_turns_mean:
            return now
        conversation = self._talk(contact)
        if profile.name == "email":
            if not transfer:
                reply = (self.rng.choice(texts.AGENT_TURNS), self.rng.choice(texts.AGENT_CLOSINGS))
                conversation.agent(now + talk, " ".join(reply))
            return now + talk
        turns = max(2, round(self.rng.gauss(profile.message_turns_mean, 2.0)))
        return conversation.live(
            start=now,
            end=now + talk,
            turns=turns if not transfer else 3,
            mood=contact.mood,
            waited_long=contact.wait_ratio > 1.5,
            resolved=contact.resolved,
            transfer=transfer,
        )

    def _transfer(self, contact: Contact, target: str) -> None:
        """Move the contact to another queue: it waits and is answered there again."""
        agent = contact.agent
        assert agent is not None
        fields = {**self._fields(contact), "to_queue": target}
        self.timeline.emit(self.timeline.now, "contact.transferred", fields)
        self.floor.start_wrap(agent)
        wrap = self.rng.uniform(*TRANSFER_WRAP_SECONDS)
        units = contact.units
        self.timeline.at(self.timeline.now + wrap, lambda: self.floor.release(agent, units))
        contact.queue, contact.agent, contact.transferred = target, None, True
        contact.leg += 1
        contact.offered_at = self.timeline.now
        self._offer(contact)

    def _end(self, contact: Contact, hold: float) -> None:
        """End the conversation; the agent starts after-contact work."""
        agent = contact.agent
        assert agent is not None
        now = self.timeline.now
        fields = self._fields(contact)
        if contact.channel == "email":
            self.timeline.emit(now, "contact.first_response", dict(fields))
        if hold > 0:
            fields["hold_seconds"] = round(hold, 1)
        elif contact.profile.hold_probability and self.rng.random() < 0.5:
            fields["hold_seconds"] = 0
        self.timeline.emit(now, "contact.ended", fields)
        self.floor.start_wrap(agent)
        acw = self.rng.expovariate(1.0 / contact.profile.acw_mean_seconds)
        self.timeline.at(now + acw, lambda: self._wrap(contact))

    def _wrap(self, contact: Contact) -> None:
        """Finish after-contact work; then the outcome: resolution, surveys, purchases."""
        agent = contact.agent
        assert agent is not None
        fields = self._fields(contact)
        self.timeline.emit(self.timeline.now, "contact.wrapped", fields)
        self.floor.release(agent, contact.units)
        self.outcomes.settle(contact, fields)
