"""Where the verdict goes besides the terminal: GitHub, Slack, the job summary, HTML.

Each notifier is a function of the verdict; none of them runs on an xdist worker (the
reporting plugin calls them on the controller, once per run).
"""

from __future__ import annotations

from .github import post_to_github
from .html import summary_html
from .http import HttpError, RetryPolicy
from .job_summary import append_job_summary, markdown
from .slack import post_to_slack

__all__ = [
    "HttpError",
    "RetryPolicy",
    "append_job_summary",
    "markdown",
    "post_to_github",
    "post_to_slack",
    "summary_html",
]
