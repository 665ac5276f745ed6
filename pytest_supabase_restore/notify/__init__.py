"""Where the verdict goes besides the terminal: GitHub, Slack, the job summary, HTML.

One module per notifier (:mod:`.github`, :mod:`.slack`, :mod:`.job_summary`, :mod:`.html`,
and :mod:`.http`, the retrying HTTP client they share), each a function of the verdict,
imported where it is used: this package imports none of them. None runs on an xdist worker
(the reporting plugin calls them on the controller, once per run).
"""
