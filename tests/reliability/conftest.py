"""The reliability suite's table: every scenario's figures, printed at the end of the run."""

from __future__ import annotations

import pytest

from tests.reliability.checks import BROKER_KIND
from tests.reliability.tally import TALLIES, render


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TALLIES:
        terminalreporter.section(f"reliability figures on {BROKER_KIND} (each count must be 0)")
        terminalreporter.write_line(render(TALLIES))
