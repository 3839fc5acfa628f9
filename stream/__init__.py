"""ccpulse's Faust app: settings, event models, agents and windowed KPI state."""
