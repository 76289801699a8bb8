"""The composition root of `kevolve serve` and `kevolve worker`: settings in, the bot out.

Everything with an effect is built here once and passed down: the storage, one GitHub client
per app installation, the feature handlers, the job worker with its runner and the proposer.
The web app (stores deliveries) and the worker (handles them, runs jobs) are built apart, to
run as two processes, or together in one.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial

from fastapi import FastAPI
from kevolve.bot.archive import Keeping
from kevolve.bot.background import Background
from kevolve.bot.configs import head_sha, read_config
from kevolve.bot.dispatcher import Dispatcher, Handler
from kevolve.bot.features import FeatureContext, FeatureContexts, feature_table
from kevolve.bot.features.context import FeatureHandler, installation_of
from kevolve.bot.fleet import FleetPoller, FleetSettings
from kevolve.bot.github import AppClient, GitHub
from kevolve.bot.jobengine import actions_runner_for
from kevolve.bot.jobs import JobSettings, JobWorker, RunnerFor
from kevolve.bot.messages import Messages
from kevolve.bot.processor import POLL_S, Processor
from kevolve.bot.proposals import Caps, PullRequests
from kevolve.bot.publisher import Publisher
from kevolve.bot.quotas import QuotaLimits
from kevolve.bot.service.app import create_app, require_secret
from kevolve.bot.settings import BotSettings
from kevolve.bot.storage import Delivery, Storage
from kevolve.bot.supervisor import Supervisor
from kevolve.bot.switchboard import Switchboard
from kevolve.bot.vault import BotSecrets
from kevolve.bot.winners import HarnessCheck
from kevolve.harness.assets import template_dir
from kevolve.harness.sandbox.confine import Confinement
from kevolve.runners.local import local_runner
from kevolve.runners.runner import Runner

TEMPLATES = template_dir("github")

ClientFor = Callable[[int | None], GitHub]


class AppClients:
    """One `AppClient` per installation, made on first use and kept (tokens refresh inside)."""

    def __init__(self, settings: BotSettings) -> None:
        if not (settings.github_app_id and settings.github_private_key_path):
            raise ValueError(
                "no GitHub App credentials: set KEVOLVE_GITHUB_APP_ID and "
                "KEVOLVE_GITHUB_PRIVATE_KEY_PATH (the app's PEM key file)"
            )
        try:
            self._key = settings.github_private_key_path.read_text()
        except OSError as exc:
            raise ValueError(
                f"cannot read KEVOLVE_GITHUB_PRIVATE_KEY_PATH={settings.github_private_key_path}: "
                f"{exc.strerror}. Fix: point it at the app's private key (.pem)"
            ) from None
        self._settings = settings
        self._clients: dict[int, GitHub] = {}
        self._lock = threading.Lock()

    def __call__(self, installation_id: int | None) -> GitHub:
        if installation_id is None:
            raise ValueError("a delivery without an installation: kevolve acts only as an app")
        with self._lock:
            if installation_id not in self._clients:
                self._clients[installation_id] = AppClient(
                    str(self._settings.github_app_id),
                    self._key,
                    installation_id,
                    self._settings.github_api_url,
                )
            return self._clients[installation_id]


def build(
    settings: BotSettings,
    client_for: ClientFor | None = None,
    runner: Runner | None = None,
    storage: Storage | None = None,
) -> tuple[FastAPI, JobWorker]:
    """Everything in one process: the app with a dispatcher thread and the job worker beside it
    (`kevolve serve --in-process`, and tests that hand in their parts)."""
    require_secret(settings)
    storage = Storage(settings.database_url) if storage is None else storage
    clients: ClientFor = AppClients(settings) if client_for is None else client_for
    jobs, routes = _processing(settings, storage, clients, runner)
    background: list[Background] = [jobs, *_fleet(settings, storage, clients, jobs)]
    return create_app(settings, storage, routes, background=background), jobs


def build_server(
    settings: BotSettings, worker: Sequence[str] | None, storage: Storage | None = None
) -> FastAPI:
    """The web app alone: it stores deliveries, and a worker process handles them. With a
    `worker` command line, the app keeps that process running (`Supervisor`) while it serves."""
    require_secret(settings)
    if worker is None:
        return create_app(settings, storage)
    AppClients(settings)  # missing credentials fail here, not in the worker's restart loop
    if settings.runner == "local":  # so does a job user that cannot run jobs
        local_runner(settings.job_user, settings.job_as_bot_user, settings.workdir)
    # The worker reads its secrets on stdin: its environment, which /proc shows, holds none.
    secrets = BotSecrets(settings.webhook_secret, settings.database_url, settings.llm_api_key)
    supervisor = Supervisor(worker, stdin=secrets.to_bytes())
    return create_app(settings, storage, background=[supervisor])


def build_worker(
    settings: BotSettings,
    client_for: ClientFor | None = None,
    runner: Runner | None = None,
    storage: Storage | None = None,
    poll_s: float = POLL_S,
) -> Processor:
    """The processing half (`kevolve worker`): a dispatcher polling the database every `poll_s`
    seconds for stored deliveries, and the job worker."""
    storage = Storage(settings.database_url) if storage is None else storage
    storage.create_all()
    clients: ClientFor = AppClients(settings) if client_for is None else client_for
    jobs, routes = _processing(settings, storage, clients, runner)
    dispatcher = Dispatcher(storage, routes, poll_seconds=poll_s, retry_s=settings.delivery_retry_s)
    return Processor([dispatcher, jobs, *_fleet(settings, storage, clients, jobs)])


def _processing(
    settings: BotSettings, storage: Storage, clients: ClientFor, runner: Runner | None
) -> tuple[JobWorker, Switchboard[Handler]]:
    """The job worker (runner, proposer, messages) and the feature handlers that feed it."""
    messages = Messages(TEMPLATES)
    publisher = Publisher(settings.workdir / "publish")
    caps = Caps(settings.max_open_prs, settings.max_prs_per_hour, settings.publish_untimed)

    # The winner is checked again before it is published as jobs are judged: as the job user
    # (unless the operator opted out), in bubblewrap where it is installed.
    user = None if settings.job_as_bot_user else settings.job_user
    judge = HarnessCheck(confinement=Confinement(user, shutil.which("bwrap")))

    def proposer_for(github: GitHub) -> PullRequests:
        clock = partial(datetime.now, UTC)
        return PullRequests(github, publisher, messages, storage, caps, clock, judge)

    jobs = JobWorker(
        storage,
        _runner_for(settings, storage, runner),
        clients,
        proposer_for,
        messages,
        JobSettings(
            workdir=settings.workdir / "jobs",
            cache_dir=settings.cache_dir,
            device=settings.device,
            minutes=settings.job_minutes,
            llm_base_url=settings.llm_base_url if settings.llm_model else None,
            llm_model=settings.llm_model if settings.llm_base_url else None,
            llm_max_usd=settings.llm_max_usd,
            llm_prices=settings.llm_prices,
            keeping=Keeping(settings.keep_jobs, settings.keep_days),
        ),
        slots=settings.job_slots,
    )
    return jobs, _routes(settings, storage, clients, messages, jobs)


def _runner_for(settings: BotSettings, storage: Storage, runner: Runner | None) -> RunnerFor:
    """Where jobs run: the given runner (tests), this host, or the repos' self-hosted runners."""
    if runner is None and settings.runner == "actions":
        return actions_runner_for(settings, storage)
    chosen = runner or local_runner(
        settings.job_user, settings.job_as_bot_user, settings.workdir, settings.llm_api_key
    )
    return lambda _github, _job: chosen


def _routes(
    settings: BotSettings,
    storage: Storage,
    clients: ClientFor,
    messages: Messages,
    worker: JobWorker,
) -> Switchboard[Handler]:
    """The features' table, built once: each handler run with the context of the delivery's
    installation (one kept per installation), then the job worker woken for what it queued."""
    contexts = FeatureContexts(
        partial(
            FeatureContext,
            storage=storage,
            messages=messages,
            bot_login=settings.bot_login,
            hardware=settings.hardware,
            budget=settings.budget,
            limits=limits(settings),
        ),
        clients,
    )

    def run(handler: FeatureHandler, delivery: Delivery) -> None:
        handler(contexts(installation_of(delivery.payload)), delivery)
        worker.wake()

    table = feature_table(partial(read_config, settings.workdir / "configs"))
    return table.bound(lambda handler: partial(run, handler))


def limits(settings: BotSettings) -> QuotaLimits:
    """The caps on what one comment, repo or person may ask for."""
    return QuotaLimits(
        commands_per_comment=settings.commands_per_comment,
        queued_per_repo=settings.queued_per_repo,
        queued_per_user=settings.queued_per_user,
        budget=settings.max_budget,
        refusal_every_s=settings.refusal_every_s,
    )


def _fleet(
    settings: BotSettings, storage: Storage, clients: ClientFor, jobs: JobWorker
) -> list[FleetPoller]:
    """The poller of runner labels and schedules, unless KEVOLVE_FLEET_POLL_S=0 turned it off."""
    if not settings.fleet_poll_s:
        return []
    fleet = FleetSettings(settings.hardware, settings.budget, settings.fleet_poll_s)
    read = partial(read_config, settings.workdir / "configs")
    clock = partial(datetime.now, UTC)
    messages = Messages(TEMPLATES)
    return [FleetPoller(storage, clients, head_sha, read, fleet, messages, clock, jobs.wake)]
