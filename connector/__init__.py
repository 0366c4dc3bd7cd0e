"""CardBridge: keeps a digital-goods card shop and its community in step."""

__version__ = "0.1.0"
