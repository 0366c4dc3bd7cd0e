"""The state store: shop records, identities, plans, the outbox, the ledger, remote ids, reviews, webhooks, tokens.

Hold a ``State`` (``State(engine)`` or ``State.open(url)``) and reach each section through it:
``state.records.save_orders_page(...)``, ``state.outbox.due(...)``. Modules:

- ``facade``: ``State``; ``db``: engines and migrations; ``tables``: the SQLModel tables; ``sql``: what sections share;
- one module per section: ``records``, ``identities``, ``planning``, ``outbox``, ``ledger``, ``remote_ids``,
  ``status``, ``reviews``, ``webhooks``, ``tokens``.
"""

from connector.state.facade import State
from connector.state.planning import CustomerPlanInput, NewAction
from connector.state.records import PageResult
from connector.state.sql import CHUNK, order_number_hash

__all__ = ["CHUNK", "CustomerPlanInput", "NewAction", "PageResult", "State", "order_number_hash"]
