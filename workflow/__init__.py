"""certflow's engine. Embed it: ``from workflow import Engine``.

    engine = Engine.from_config("config.toml")
    order = engine.place(common_name="www.example.jp", organization="Example Corp.",
                         locality="Shinjuku-ku", prefecture="Tokyo", country="JP",
                         plan="basic", contract="C-1001", email="owner@example.jp")
    engine.fire(order.id, "pay")
"""
from workflow.engine import Engine
from workflow.errors import (CertflowError, ConcurrencyError, InvalidTransition, NotFound,
                             ValidationError)
from workflow.model import Event, Order

__all__ = ["Engine", "Order", "Event", "CertflowError", "ValidationError", "InvalidTransition",
           "ConcurrencyError", "NotFound"]
