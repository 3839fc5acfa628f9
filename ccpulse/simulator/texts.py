"""Short, real English message text whose tone follows the customer's mood."""

from __future__ import annotations

import random

# Customer openers per topic and mood. Slots: {amount} {days} {order} {plan} {device}.
OPENERS: dict[str, dict[str, tuple[str, ...]]] = {
    "billing": {
        "negative": (
            "I was charged twice this month and nobody has fixed it. This is unacceptable.",
            "Why is my bill {amount} dollars higher than last month? I never agreed to this.",
            "You took money from my account after I cancelled. I want a refund now.",
            "Third time contacting you about the same wrong invoice. Really frustrating.",
        ),
        "neutral": (
            "Hi, I have a question about my latest invoice.",
            "Can you explain the {amount} dollar charge on my statement?",
            "I'd like to change the card you have on file.",
            "When is my next payment due?",
        ),
        "positive": (
            "Hi! Quick one: can I switch to yearly billing? Thanks so much.",
            "Thanks for the reminder email. Could you send me a copy of the invoice?",
            "Great service so far, I just want to update my billing address.",
        ),
    },
    "tech_support": {
        "negative": (
            "My {device} has not worked for {days} days and I'm losing patience.",
            "The app keeps crashing every time I log in. This is terrible.",
            "Internet is down again. This is the worst service I have ever had.",
            "I followed your guide and now nothing works at all. Useless.",
        ),
        "neutral": (
            "Hi, I can't connect my {device} to the network.",
            "The app shows an error code 503 when I open settings.",
            "How do I reset my password? The link in the email expired.",
            "My {device} is slow since the last update.",
        ),
        "positive": (
            "Hello! Loving the new features. One small question about the {device} setup.",
            "Hi, thanks for the quick fix last time. Could you help me with one more thing?",
        ),
    },
    "sales": {
        "negative": (
            "I tried to order online and the checkout failed twice. Annoying.",
            "Your website says one price and the cart says another. Which is it?",
        ),
        "neutral": (
            "Hi, I'd like to know more about the {plan} plan.",
            "Do you offer a discount for families?",
            "What is the difference between the basic and the {plan} plan?",
            "Is order {order} eligible for free shipping?",
        ),
        "positive": (
            "Hi! I'm ready to upgrade to {plan}, how do I do it?",
            "Love your product, I want to buy two more licences for my team.",
            "Great reviews from my friends, I'd like to sign up today!",
        ),
    },
    "retention": {
        "negative": (
            "I want to cancel my subscription. I'm done with this.",
            "Your prices went up again. Cancel my account please.",
            "I've had nothing but problems for {days} days. Close my account.",
        ),
        "neutral": (
            "I'm thinking about cancelling. What options do I have?",
            "My contract ends next month. Can we talk about the renewal?",
            "Can I pause my plan for a few months instead of cancelling?",
        ),
        "positive": (
            "Hi, I'd like to stay but I need a cheaper plan. Can you help?",
            "I've been a happy customer for years, just checking my renewal offer.",
        ),
    },
    "general": {
        "negative": (
            "Nobody answers my emails. This is really disappointing.",
            "Order {order} is {days} days late and I'm very unhappy.",
            "I'm fed up. I've explained this problem three times already.",
        ),
        "neutral": (
            "Hi, where is my order {order}?",
            "Can I change the delivery address for order {order}?",
            "I need help updating my account details.",
            "Hello, what are your opening hours on weekends?",
        ),
        "positive": (
            "Hi! Thanks for the fast delivery. Can I return one item from order {order}?",
            "Great job on the new website. Quick question about my account.",
        ),
    },
}

WAIT_COMPLAINTS = (
    "I've been waiting forever. This is ridiculous.",
    "Finally. That wait was way too long.",
    "Why does it take so long to reach someone?",
    "I almost gave up, the wait was awful.",
)

FOLLOW_UPS = {
    "negative": (
        "That doesn't help me at all.",
        "I already tried that and it didn't work.",
        "This is taking too long.",
        "Seriously? Again?",
        "I'm really not happy with this.",
    ),
    "neutral": (
        "Okay, let me check.",
        "Sure, one moment please.",
        "The account number is on the invoice, right?",
        "Yes, that's my email address.",
        "I see. What happens next?",
    ),
    "positive": (
        "Great, that makes sense.",
        "Perfect, thank you!",
        "Oh nice, that was easy.",
        "Thanks, that's really helpful.",
    ),
}

CLOSINGS = {
    True: (
        "Thank you so much, that solved it!",
        "Great, all sorted. Have a nice day!",
        "Thanks for your help, much appreciated.",
        "Perfect, works now. Thanks!",
    ),
    False: (
        "So it's still not fixed. Very disappointing.",
        "I guess I'll have to contact you again. Not great.",
        "This didn't solve anything.",
        "Fine. I'm not happy but okay.",
    ),
}

AGENT_GREETINGS = (
    "Hi, thanks for reaching out! How can I help you today?",
    "Hello, my name is Sam. I'm happy to help.",
    "Hi there, thanks for your patience. Let me take a look.",
    "Good to hear from you. I'm checking your account now.",
)

AGENT_TURNS = (
    "I can see the issue on your account.",
    "Could you confirm the email address on the account?",
    "Thanks, give me a moment to check that.",
    "I've applied the change, it should show within a few minutes.",
    "I understand, and I'm sorry for the trouble.",
    "Let me walk you through the steps.",
    "I've escalated this so it gets fixed properly.",
)

AGENT_CLOSINGS = (
    "Is there anything else I can help you with?",
    "Glad I could help. Have a great day!",
    "Thanks for contacting us. Take care!",
)

AGENT_TRANSFERS = (
    "I'll transfer you to the right team, one moment please.",
    "My colleagues in another team can help with this, transferring you now.",
)

SLOTS = {
    "amount": ("12", "25", "39.99", "60", "120"),
    "days": ("two", "three", "five", "ten"),
    "order": ("A-10422", "B-77310", "C-20931", "D-55018"),
    "plan": ("Premium", "Family", "Pro", "Unlimited"),
    "device": ("router", "phone", "laptop", "smart TV"),
}

# Sentiment a vendor's speech/text analytics would attach, per mood bucket.
SENTIMENT_RANGES = {"negative": (-0.9, -0.25), "neutral": (-0.2, 0.2), "positive": (0.3, 0.9)}


def mood_bucket(mood: float) -> str:
    """Map a mood (-1..1) to a tone."""
    if mood < -0.2:
        return "negative"
    return "positive" if mood > 0.3 else "neutral"


def fill(template: str, rng: random.Random) -> str:
    """Fill a template's slots with plausible values."""
    if "{" not in template:
        return template
    return template.format(**{name: rng.choice(values) for name, values in SLOTS.items()})


def opener(topic: str, mood: float, rng: random.Random) -> str:
    """Return the customer's first message."""
    pools = OPENERS.get(topic, OPENERS["general"])
    return fill(rng.choice(pools[mood_bucket(mood)]), rng)


def follow_up(mood: float, rng: random.Random) -> str:
    """Return a mid-conversation customer turn."""
    return rng.choice(FOLLOW_UPS[mood_bucket(mood)])


def closing(resolved: bool, rng: random.Random) -> str:
    """Return the customer's last turn."""
    return rng.choice(CLOSINGS[resolved])


def sentiment(mood: float, rng: random.Random) -> float:
    """Return a sentiment score (-1..1) matching the tone of a message at this mood."""
    low, high = SENTIMENT_RANGES[mood_bucket(mood)]
    return round(rng.uniform(low, high), 2)
