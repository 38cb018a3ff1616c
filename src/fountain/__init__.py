"""fountain: conversational fine-tuning data from a declarative spec."""

__version__ = "0.1.0"
