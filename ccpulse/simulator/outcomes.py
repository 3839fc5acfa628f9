"""What follows a handled contact: resolution, reopening, purchases, cancellations, surveys."""

from __future__ import annotations

import math
import random

from ccpulse.simulator import feedback, texts
from ccpulse.simulator.conversation import Conversation
from ccpulse.simulator.customers import Customers
from ccpulse.simulator.routing import Contact
from ccpulse.simulator.scenario import Scenario
from ccpulse.simulator.timeline import Fields, Timeline

FIRST_CONTACT_FLAG_SHARE = 0.6  # resolutions carrying `first_contact`; the rest leave it out
SECOND_SURVEY_SHARE = 0.35  # surveyed customers who also answer NPS, and separately CES
# Mean seconds from wrap-up to resolution: async tickets close when the customer confirms.
RESOLVE_DELAY_SECONDS = {"email": 7200.0, "sms": 1200.0, "social": 1800.0}
REOPEN_SHARE = {"email": 0.05, "sms": 0.03, "social": 0.03}  # 1 % elsewhere


class Outcomes:
    """Commit the events that follow a contact's wrap-up."""

    def __init__(
        self, scenario: Scenario, timeline: Timeline, rng: random.Random, customers: Customers
    ) -> None:
        self.scenario = scenario
        self.timeline = timeline
        self.rng = rng
        self.customers = customers

    def settle(self, contact: Contact, fields: Fields) -> None:
        """Resolve (or not), maybe reopen, maybe survey; remember the contact for repeats."""
        self.customers.record(contact.customer_number, contact.resolved)
        if contact.resolved:
            self._resolve(contact, fields)
        if self.rng.random() < contact.profile.survey_probability:
            self._survey(contact, fields)

    def _resolve(self, contact: Contact, fields: Fields) -> None:
        rng = self.rng
        when = self.timeline.now
        mean_delay = RESOLVE_DELAY_SECONDS.get(contact.channel)
        if mean_delay:
            when += rng.expovariate(1.0 / mean_delay)
            if contact.channel == "email":
                share = self.scenario.sentiment_field_share
                talk = Conversation(self.timeline, rng, fields, share)
                talk.customer(when, texts.closing(True, rng), 0.6)
        resolved = dict(fields)
        flagged = rng.random() < FIRST_CONTACT_FLAG_SHARE
        if flagged:
            resolved["first_contact"] = not contact.repeat
        self._outcome(contact, resolved, when)
        self.timeline.emit(when, "contact.resolved", resolved)
        if rng.random() < REOPEN_SHARE.get(contact.channel, 0.01):
            self._reopen(fields, when, flagged)

    def _outcome(self, contact: Contact, resolved: Fields, when: float) -> None:
        """Sales contacts convert (and buy); retention contacts are kept or cancel."""
        queue = self.scenario.queue(contact.queue)
        number = contact.customer_number
        if self.rng.random() < queue.conversion_probability:
            resolved["outcome"] = "converted"
            amount = self.rng.lognormvariate(math.log(80.0), 0.7)
            self.customers.purchase(number, when, amount)
        elif queue.cancel_probability:
            if self.rng.random() < queue.cancel_probability:
                resolved["outcome"] = "cancelled"
                self.customers.leave(number, when)
            else:
                resolved["outcome"] = "retained"

    def _reopen(self, fields: Fields, resolved_at: float, flagged: bool) -> None:
        """Reopen a resolved contact hours later; most get resolved again after that."""
        reopened_at = resolved_at + self.rng.expovariate(1.0 / 28_800.0)
        reopened = {key: value for key, value in fields.items() if key != "agent_id"}
        self.timeline.emit(reopened_at, "contact.reopened", reopened)
        if self.rng.random() < 0.6:
            again = dict(fields)
            if flagged:
                again["first_contact"] = False
            self.timeline.emit(
                reopened_at + self.rng.expovariate(1.0 / 14_400.0), "contact.resolved", again
            )

    def _survey(self, contact: Contact, fields: Fields) -> None:
        """Commit a CSAT answer, sometimes with NPS and CES, shortly after the contact."""
        rng = self.rng
        latent = feedback.experience(
            resolved=contact.resolved,
            wait_ratio=contact.wait_ratio,
            transferred=contact.transferred,
            mood=contact.mood,
            rng=rng,
        )
        if contact.profile.synchronous:
            when = self.timeline.now + rng.uniform(5.0, 90.0)
        else:
            when = self.timeline.now + rng.expovariate(1.0 / 3600.0)
        kinds = ["csat"] + [k for k in ("nps", "ces") if rng.random() < SECOND_SURVEY_SHARE]
        for offset, kind in enumerate(kinds):
            answer = {**fields, "survey": kind, "score": feedback.score(kind, latent, rng)}
            self.timeline.emit(when + offset * rng.uniform(2.0, 8.0), "survey.response", answer)
