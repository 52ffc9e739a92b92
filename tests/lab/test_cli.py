"""`hwkit lab run` end to end, as a user types it."""

import re
import subprocess
import sys

import pytest

from hwkit.lab.machine import GUEST_RUN_DIR

HWKIT = [sys.executable, "-m", "hwkit.tools.cli"]


@pytest.mark.lab("pci", host=True)
def test_run_streams_output_and_passes_the_exit_status(tmp_path) -> None:
    """Also: a script under the host's /tmp (where CI clones often live) runs in the guest."""
    script = tmp_path / "status.py"
    script.write_text("import os; print('guest', os.uname().release); raise SystemExit(7)\n")
    done = subprocess.run(
        [*HWKIT, "lab", "run", "--profile", "pci", "--", sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 7, done.stderr
    assert re.search(r"^guest \d+\.\d+\.\d+-\d+-amd64$", done.stdout, re.M), done.stdout
    assert re.search(r"lab: guest ready in \d+\.\d s", done.stderr), done.stderr


@pytest.mark.lab("pci", host=True)
def test_a_device_left_out_of_the_profile_fails_its_inventory_test() -> None:
    """The inventory tests can fail: without edu, exactly the edu check fails."""
    done = subprocess.run(
        [
            *HWKIT, "lab", "run", "--profile", "pci", "--omit", "edu0", "--",
            sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
            "tests/lab/test_inventory.py", "-k", "pci",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "no PCI function 1234:11e8" in done.stdout
    assert re.search(r"\b1 failed, 4 passed\b", done.stdout), done.stdout


@pytest.mark.lab("pci", host=True)
def test_files_the_host_writes_while_the_guest_runs_go_through_the_run_folder(lab) -> None:
    """The root is an overlay: host files made after boot belong in the shared folder."""
    script = lab.run_dir / "hello.py"
    script.write_text("import sys; print('seen from', sys.argv[1])\n")
    guest_path = f"{GUEST_RUN_DIR}/hello.py"
    result = lab.run([sys.executable, guest_path, "guest"])
    assert result.status == 0, result.stderr.decode()
    assert result.text.strip() == "seen from guest"
