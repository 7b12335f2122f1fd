"""Every long-running command takes ``--log-format`` / ``CARTBANDS_LOG_FORMAT`` and refuses an
unknown format at once, with one line, before it touches the broker."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "command",
    [
        ["worker"],
        ["gateway", "--port", "0"],
        ["sender", "--channel", "email"],
    ],
)
def test_an_unknown_log_format_is_refused_in_one_line(command: list[str]) -> None:
    env = {**os.environ, "CARTBANDS_LOG_FORMAT": "xml", "CARTBANDS_BROKER": "kafka://127.0.0.1:9"}
    done = subprocess.run(
        [sys.executable, "-m", "cartbands", *command],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == ["Error: CARTBANDS_LOG_FORMAT: log format must be one of text, json, not 'xml'"]
