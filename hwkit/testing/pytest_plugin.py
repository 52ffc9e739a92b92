"""pytest plugin: tests marked ``lab`` run against real kernel drivers in the QEMU lab.

Mark a test (or a module, with ``pytestmark``) with the profile it needs:

    @pytest.mark.lab("pci")                 # runs inside a pci guest, as root
    def test_edu_is_there(): ...

    @pytest.mark.lab("usb", host=True)      # runs on the host, with the guest at hand
    def test_unplug(lab): lab.qmp.device_del("kbd") ...

On the host, the plugin collects every test as usual; guest tests of one profile run
together in one guest boot (one pytest process inside the guest) and their reports come
back to the host's run as ordinary passes, failures and skips, with the guest's
tracebacks. Host-side lab tests get the ``lab`` fixture (a started
:class:`hwkit.lab.Lab` of their profile, the same guest, used after its guest tests ran),
``lab_qmp`` and ``lab_ftdi``. Unit tests keep running on the host.

Options: ``--no-lab`` skips lab tests (reported as skipped, never silently passed);
``--lab-output DIR`` keeps every guest's logs. A lab that cannot boot fails its tests
with the reason (missing package, boot timeout, panic...).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import pytest

GUEST = os.environ.get("HWKIT_LAB_GUEST") == "1"
REPORT_FILE_OPTION = "--lab-report"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hwkit-lab", "hwkit hardware lab")
    group.addoption("--no-lab", action="store_true", help="skip tests marked lab")
    group.addoption("--lab-output", metavar="DIR", help="keep each lab guest's logs under DIR")
    group.addoption(
        "--lab-boot-timeout", type=float, default=180.0, metavar="S", help="guest boot timeout"
    )
    group.addoption(
        "--lab-timeout",
        type=float,
        default=1800.0,
        metavar="S",
        help="kill a profile's guest tests after S seconds (default 1800)",
    )
    group.addoption(REPORT_FILE_OPTION, metavar="FILE", help=argparse.SUPPRESS)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "lab(*profiles, host=False): needs the QEMU hardware lab with these profiles",
    )
    if GUEST:
        if path := config.getoption(REPORT_FILE_OPTION):
            config.pluginmanager.register(GuestReporter(config, Path(path)), "hwkit-lab-guest")
    elif not config.getoption("--no-lab"):
        config.pluginmanager.register(HostLabs(config), "hwkit-lab-host")


def lab_marker(item: pytest.Item) -> tuple[tuple[str, ...], bool] | None:
    """The profiles a test needs and whether it runs on the host; None if not a lab test."""
    marker = item.get_closest_marker("lab")
    if marker is None:
        return None
    names = tuple(marker.args) or ("all",)
    return names, bool(marker.kwargs.get("host", False))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        spec = lab_marker(item)
        if spec is None:
            continue
        if config.getoption("--no-lab"):
            item.add_marker(pytest.mark.skip(reason="lab test, and --no-lab was given"))
        elif GUEST and spec[1]:
            item.add_marker(pytest.mark.skip(reason="host-side lab test: run it from the host"))


# --- inside the guest -------------------------------------------------------------------


class GuestReporter:
    """Writes every test and collection report to a JSON-lines file the host reads."""

    def __init__(self, config: pytest.Config, path: Path) -> None:
        self.config = config
        self.file = path.open("a", buffering=1)

    def _write(self, report: Any) -> None:
        data = self.config.hook.pytest_report_to_serializable(config=self.config, report=report)
        self.file.write(json.dumps(data) + "\n")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._write(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self._write(report)


# --- on the host ------------------------------------------------------------------------


class GuestBatch:
    """The guest tests of one profile key and, once run, their reports by node id."""

    def __init__(self, key: tuple[str, ...]) -> None:
        self.key = key
        self.items: list[pytest.Item] = []
        self.reports: dict[str, list[Any]] | None = None
        self.trouble = ""  # why some items may have no reports


class HostLabs:
    """Boots one guest per profile key on first use, runs its guest batch, shuts all down."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.batches: dict[tuple[str, ...], GuestBatch] = {}
        self.labs: dict[tuple[str, ...], Any] = {}
        self.lab_errors: dict[tuple[str, ...], Exception] = {}
        # lab tests (guest and host side) still to run per key: a guest no test needs any
        # more is shut down at once, so it does not slow the next one down
        self.remaining: collections.Counter[tuple[str, ...]] = collections.Counter()
        self.keys: dict[str, tuple[str, ...]] = {}

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            spec = lab_marker(item)
            if spec is None or item.get_closest_marker("skip"):
                continue
            key = spec[0]
            self.remaining[key] += 1
            self.keys[item.nodeid] = key
            if not spec[1]:
                self.batches.setdefault(key, GuestBatch(key)).items.append(item)

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        key = self.keys.get(nodeid)
        if key is None:
            return
        self.remaining[key] -= 1
        if self.remaining[key] == 0 and key in self.labs:
            self.labs.pop(key).close()

    def lab_for(self, key: tuple[str, ...]) -> Any:
        """The started lab for `key`, after its guest batch ran; raises its boot error."""
        if key in self.lab_errors:
            raise self.lab_errors[key]
        if key not in self.labs:
            from hwkit.lab.machine import Lab

            output = self.config.getoption("--lab-output")
            lab = Lab(
                key,
                output=Path(output) / "-".join(key) if output else None,
                boot_timeout=self.config.getoption("--lab-boot-timeout"),
            )
            try:
                lab.start()
            except Exception as exc:
                lab.close()
                self.lab_errors[key] = exc
                raise
            self.labs[key] = lab
            self._report(f"lab: {lab.profile.name} guest ready in {lab.boot_seconds:.1f} s")
            if key in self.batches:
                self._run_batch(lab, self.batches[key])
        return self.labs[key]

    def _report(self, text: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(text)

    def _run_batch(self, lab: Any, batch: GuestBatch) -> None:
        name = "-".join(batch.key)
        report_file = lab.run_dir / f"reports-{name}.jsonl"
        log_file = lab.run_dir / f"pytest-{name}.log"
        guest_report = f"/run/hwkit-lab/{report_file.name}"
        argv = [
            sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
            f"--rootdir={self.config.rootpath}", REPORT_FILE_OPTION, guest_report,
            *[item.nodeid for item in batch.items],
        ]  # fmt: skip
        from hwkit.lab.errors import LabError

        timeout = self.config.getoption("--lab-timeout")
        with log_file.open("wb") as log:
            try:
                status = lab.run(
                    argv, cwd=str(self.config.rootpath), stdout=log, stderr=log, timeout=timeout
                ).status
                outcome = f"exit {status}"
            except LabError as exc:  # a hung or lost guest: keep whatever was reported
                outcome = str(exc)
        self._report(
            f"lab: {len(batch.items)} guest tests ran in the {lab.profile.name} guest ({outcome})"
        )
        reports: dict[str, list[Any]] = {}
        collect_errors = []
        if report_file.exists():
            for line in report_file.read_text().splitlines():
                rep = self.config.hook.pytest_report_from_serializable(
                    config=self.config, data=json.loads(line)
                )
                if isinstance(rep, pytest.TestReport):
                    reports.setdefault(rep.nodeid, []).append(rep)
                else:
                    collect_errors.append(f"{rep.nodeid}: {rep.longreprtext}")
        log_tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-30:])
        batch.reports = reports
        batch.trouble = (
            f"the guest pytest ({outcome}) did not finish this test.\n"
            + "".join(f"collection error in the guest: {e}\n" for e in collect_errors)
            + f"last lines of its output:\n{log_tail}"
        )

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> Any:
        spec = lab_marker(item)
        if spec is None or spec[1] or item.get_closest_marker("skip"):
            return None
        batch = self.batches[spec[0]]
        item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        try:
            self.lab_for(batch.key)
            reports = list((batch.reports or {}).get(item.nodeid, []))
            if not any(r.when == "teardown" for r in reports):  # it never finished
                reports.append(_failed(item, f"lab {'+'.join(batch.key)}: {batch.trouble}"))
        except Exception as exc:
            reports = [_failed(item, _lab_failure(batch.key, exc))]
        for report in reports:
            item.ihook.pytest_runtest_logreport(report=report)
        # The item ran in the guest, but the host's fixtures of the items around it
        # still need tearing down as the standard protocol would (runner.runtestprotocol).
        item.session._setupstate.teardown_exact(nextitem)
        item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True

    def pytest_sessionfinish(self) -> None:
        for lab in self.labs.values():
            lab.close()
        self.labs.clear()


def _lab_failure(key: tuple[str, ...], exc: Exception) -> str:
    """The lab's own errors explain themselves; anything else is a bug: keep its traceback."""
    from hwkit.lab.errors import LabError

    text = f"the lab for {'+'.join(key)} failed: {exc}"
    if isinstance(exc, LabError):
        return text + (f"\nlast lines of the guest console:\n{exc.detail}" if exc.detail else "")
    return text + "\n" + "".join(traceback.format_exception(exc))


def _failed(item: pytest.Item, text: str) -> pytest.TestReport:
    return pytest.TestReport(
        nodeid=item.nodeid,
        location=item.location,
        keywords={k: 1 for k in item.keywords},
        outcome="failed",
        longrepr=text,
        when="call",
    )


# --- fixtures for host-side lab tests -----------------------------------------------------


@pytest.fixture
def lab(request: pytest.FixtureRequest) -> Any:
    """The running lab guest of this test's profile (a :class:`hwkit.lab.Lab`)."""
    spec = lab_marker(request.node)
    if spec is None or not spec[1]:
        raise pytest.UsageError(
            f"{request.node.nodeid}: the `lab` fixture is for host-side lab tests: "
            'mark the test @pytest.mark.lab("PROFILE", host=True)'
        )
    labs = request.config.pluginmanager.get_plugin("hwkit-lab-host")
    if labs is None:
        pytest.skip("lab tests are disabled (--no-lab)")
    return labs.lab_for(spec[0])


@pytest.fixture
def lab_qmp(lab: Any) -> Any:
    """The QMP monitor of the lab guest's QEMU (device_add, device_del, send_key...)."""
    return lab.qmp


@pytest.fixture
def lab_ftdi(lab: Any) -> Any:
    """The host end of the guest's usb-serial FTDI, a connected stream socket."""
    return lab.ftdi
