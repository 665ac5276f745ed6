"""The ephemeral target: a throwaway PostgreSQL cluster and a local S3 server."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ..cleanup import Step, run_steps
from ..pg import cron
from ..pg.binaries import find_server_tools
from ..pg.cluster import Cluster
from ..storage.server import LocalS3Server
from . import platform
from .base import StagingTarget

log = logging.getLogger(__name__)


@dataclass
class EphemeralStaging(StagingTarget):
    cluster: Cluster | None = field(default=None, repr=False)
    s3_server: LocalS3Server | None = field(default=None, repr=False)

    @classmethod
    def start(
        cls, min_major: int, pg_bindir: str | None = None, *, with_s3: bool = True
    ) -> EphemeralStaging:
        binaries = find_server_tools(min_major, pg_bindir)
        # pg_cron is loaded where the installation has it (as on Supabase), with a scheduler
        # that can never run a job: see pg.cron.
        cron_settings = cron.settings(binaries)
        cluster = Cluster(
            binaries, superuser="supabase_admin", name="staging", settings=cron_settings
        )
        s3_server: LocalS3Server | None = None
        try:
            cluster.start()
            if with_s3:
                s3_server = LocalS3Server(name="staging-s3").start()
        except BaseException:
            cluster.stop()
            raise
        return cls(
            kind="ephemeral",
            dsn=cluster.dsn(),
            label=(
                f"ephemeral PostgreSQL {binaries.version} ({binaries.origin}) "
                f"on 127.0.0.1:{cluster.port}"
            ),
            server_version=binaries.version,
            platform_present=False,
            prepare_sql=platform.for_backup_set(),
            prepare_cli_sql=platform.for_cli_dump(),
            s3=s3_server.endpoint if s3_server else None,
            cluster=cluster,
            s3_server=s3_server,
            cron_inert=bool(cron_settings),
        )

    def after_restore(self) -> None:
        """PostgREST logs in as ``authenticator``: give it a password in the cluster's
        password file, so the API checks can log in as it (the cluster is SCRAM-only)."""
        assert self.cluster is not None
        with self.cluster.connect() as conn:
            row = conn.execute(
                "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'authenticator'"
            ).fetchone()
        if row is not None and row[0]:
            self.cluster.set_password("authenticator")

    def release(self) -> None:
        """Kept after the run: the cluster and the S3 server outlive this process."""
        if self.s3_server is not None:
            self.s3_server.release()
        if self.cluster is not None:
            self.cluster.release()

    def stop(self) -> None:
        """Stop the S3 server and the cluster: each step best effort (see cleanup.run_steps)."""
        steps: list[Step] = []
        if self.s3_server is not None:
            steps.append(("stop the staging S3 server", self.s3_server.stop))
        if self.cluster is not None:
            steps.append(("stop the staging cluster", self.cluster.stop))
        run_steps(steps, logger=log)
