"""The bot's features, one module each, composed into the dispatcher's handler table."""

from __future__ import annotations

from functools import partial

from bot.dispatcher import Handler
from bot.features import comments, pulls, push
from bot.features.context import FeatureContext
from bot.features.push import LoadOps

__all__ = ["FeatureContext", "LoadOps", "handlers"]


def handlers(ctx: FeatureContext, load_ops: LoadOps) -> dict[str, Handler]:
    """The handler of each webhook event the bot acts on."""
    return {
        "issue_comment": partial(comments.handle, ctx),
        "push": partial(push.handle, ctx, load_ops),
        "pull_request": partial(pulls.handle, ctx),
    }
