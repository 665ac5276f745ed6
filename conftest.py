"""Repository-level pytest configuration.

The plugin itself is loaded through its ``pytest11`` entry point; nothing here is needed by
users. ``bench/`` holds benchmarks, not tests: it is never collected.
"""

collect_ignore = ["bench", "build", "dist"]
