"""The lab plugin's host and guest halves, driven through pytester (no guest boot)."""

import json

import pytest

LAB_TESTS = """
import pytest

@pytest.mark.lab("pci")
def test_in_guest():
    pass

@pytest.mark.lab("usb", host=True)
def test_on_host(lab):
    pass

def test_plain():
    pass
"""


def test_no_lab_skips_lab_tests_and_says_why(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(LAB_TESTS)
    result = pytester.runpytest("--no-lab", "-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*--no-lab was given*"])


def test_a_lab_that_cannot_start_fails_its_tests_with_the_reason(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HWKIT_LAB_QEMU", "/nonexistent/qemu")
    pytester.makepyfile(LAB_TESTS)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1, errors=1)
    result.stdout.fnmatch_lines(["*the lab for pci failed*HWKIT_LAB_QEMU=/nonexistent/qemu*"])


def test_in_the_guest_reports_are_written_and_host_tests_skipped(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hwkit.testing.pytest_plugin as plugin

    monkeypatch.setattr(plugin, "GUEST", True)
    pytester.makepyfile(LAB_TESTS)
    report = pytester.path / "reports.jsonl"
    result = pytester.runpytest_inprocess("--lab-report", str(report))
    result.assert_outcomes(passed=2, skipped=1)
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    calls = {d["nodeid"].split("::")[1]: d["outcome"] for d in lines if d["when"] == "call"}
    assert calls == {"test_in_guest": "passed", "test_plain": "passed"}


def test_guest_reports_come_back_as_host_reports(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report serialised in the guest is an ordinary failure on the host."""
    import hwkit.testing.pytest_plugin as plugin

    monkeypatch.setattr(plugin, "GUEST", True)
    pytester.makepyfile("def test_fails():\n    assert 1 == 2\n")
    report = pytester.path / "r.jsonl"
    pytester.runpytest_inprocess("--lab-report", str(report))
    config = pytester.parseconfig()
    reports = [
        config.hook.pytest_report_from_serializable(config=config, data=json.loads(line))
        for line in report.read_text().splitlines()
    ]
    call = next(r for r in reports if r.when == "call")
    assert isinstance(call, pytest.TestReport) and call.failed
    assert "assert 1 == 2" in call.longreprtext


def test_the_lab_fixture_is_only_for_host_side_lab_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(lab):\n    pass\n")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["*the `lab` fixture is for host-side lab tests*"])


def test_host_fixtures_around_guest_items_are_torn_down(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module fixture used before a guest item is finalised, and later items run clean."""
    monkeypatch.setenv("HWKIT_LAB_QEMU", "/nonexistent/qemu")
    pytester.makepyfile(
        test_a="""
import pytest
events = []

@pytest.fixture(scope="module")
def resource():
    events.append("up")
    yield
    events.append("down")

def test_uses_it(resource):
    pass

@pytest.mark.lab("pci")
def test_in_guest():
    pass
""",
        test_b="""
def test_after():
    import test_a
    assert test_a.events == ["up", "down"]
""",
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=1)
