"""The container target: ``supabase/postgres`` through testcontainers.

The image provides the real reserved roles, extensions and platform schemas, so the restore
skips the platform's own objects (they exist) and restores user schemas and the data of
``auth`` and ``storage``. Needs a running Docker engine; tests skip where none answers.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

from ..cleanup import Step, run_steps
from ..errors import ConfigError
from ..storage.server import LocalS3Server
from .base import StagingTarget

log = logging.getLogger(__name__)

IMAGES = {15: "supabase/postgres:15.8.1.085", 17: "supabase/postgres:17.6.1.132"}


@dataclass
class ContainerStaging(StagingTarget):
    container: Any = field(default=None, repr=False)
    s3_server: LocalS3Server | None = field(default=None, repr=False)

    @classmethod
    def start(cls, major: int) -> ContainerStaging:
        from . import container_problem

        problem = container_problem()  # checked at start too, unless the kind was auto
        if problem is not None:
            raise ConfigError(problem)
        from testcontainers.postgres import PostgresContainer

        image = IMAGES.get(major)
        if image is None:
            raise ConfigError(f"No supabase/postgres image is known for PostgreSQL {major}.")
        password = secrets.token_urlsafe(24)  # random: the container is reachable on a port
        container = PostgresContainer(
            image, username="supabase_admin", password=password, dbname="postgres"
        )
        container.start()
        s3_server: LocalS3Server | None = None
        try:
            s3_server = LocalS3Server(name="staging-s3").start()
            host = container.get_container_host_ip()
            port = container.get_exposed_port(5432)
            dsn = f"postgresql://supabase_admin:{password}@{host}:{port}/postgres"
        except BaseException:
            container.stop()
            if s3_server is not None:
                s3_server.stop()
            raise
        return cls(
            kind="container",
            dsn=dsn,
            label=f"container {image}",
            server_version=image.split(":")[1],
            platform_present=True,
            s3=s3_server.endpoint,
            container=container,
            s3_server=s3_server,
        )

    def stop(self) -> None:
        """Stop the S3 server and the container: each step best effort (see cleanup.run_steps)."""
        steps: list[Step] = []
        if self.s3_server is not None:
            steps.append(("stop the staging S3 server", self.s3_server.stop))
        if self.container is not None:
            steps.append(("stop the staging container", self.container.stop))
        run_steps(steps, logger=log)
