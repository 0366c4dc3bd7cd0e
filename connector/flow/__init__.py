"""The pass: its stages (pull, prepare, plan, match, deliver, reconcile, report) and the connector that runs them."""

from connector.features.base import PassReport, PlannedAction, Progress
from connector.flow.connector import Connector, dry_run
from connector.flow.naming import describe_customer

__all__ = ["Connector", "PassReport", "PlannedAction", "Progress", "describe_customer", "dry_run"]
