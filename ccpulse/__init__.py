"""ccpulse: real-time contact-center KPIs. The command line lives in ccpulse.cli."""

__version__ = "0.1.0"
