"""The bot's features, one module each, registered once into the feature table."""

from __future__ import annotations

from kevolve.bot.features import comments, pulls, push, workflows
from kevolve.bot.features.context import FeatureContext, FeatureContexts, FeatureTable
from kevolve.bot.features.push import LoadConfig

__all__ = ["FeatureContext", "FeatureContexts", "FeatureTable", "LoadConfig", "feature_table"]


def feature_table(load_config: LoadConfig) -> FeatureTable:
    """Every feature's handlers by the (event, action) pairs they take; a RouteConflict when
    two features claim one pair."""
    table = FeatureTable()
    comments.register(table)
    push.register(table, load_config)
    pulls.register(table)
    workflows.register(table)
    return table
