"""The bot's features, one module each, composed into the dispatcher's handler table."""

from __future__ import annotations

from functools import partial

from kevolve.bot.dispatcher import Handler
from kevolve.bot.features import comments, pulls, push, workflows
from kevolve.bot.features.context import FeatureContext
from kevolve.bot.features.push import LoadConfig

__all__ = ["FeatureContext", "LoadConfig", "handlers"]


def handlers(ctx: FeatureContext, load_config: LoadConfig) -> dict[str, Handler]:
    """The handler of each webhook event the bot acts on."""
    return {
        "issue_comment": partial(comments.handle, ctx),
        "push": partial(push.handle, ctx, load_config),
        "pull_request": partial(pulls.handle, ctx),
        "workflow_job": partial(workflows.handle, ctx),
        "workflow_run": partial(workflows.handle, ctx),
    }
