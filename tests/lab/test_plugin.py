"""The pytest plugin against a real guest: a hung guest test cannot hang the host's run."""

import pytest

HANGS = """
import time
import pytest

@pytest.mark.lab("pci")
def test_reports_before_the_hang():
    pass

@pytest.mark.lab("pci")
def test_hangs():
    time.sleep(3600)
"""


@pytest.mark.lab("pci", host=True)
def test_a_hung_guest_batch_is_killed_and_reported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_hang=HANGS)
    result = pytester.runpytest_subprocess("--lab-timeout", "45", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*ran past its 45 s timeout and was killed*"])
