"""`hwkit lab run` end to end, as a user types it."""

import re
import subprocess
import sys

import pytest

HWKIT = [sys.executable, "-m", "hwkit.tools.cli"]


@pytest.mark.lab("pci", host=True)
def test_run_streams_output_and_passes_the_exit_status() -> None:
    code = "import os; print('guest', os.uname().release); raise SystemExit(7)"
    done = subprocess.run(
        [*HWKIT, "lab", "run", "--profile", "pci", "--", sys.executable, "-c", code],
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
def test_host_files_under_tmp_are_visible_in_the_guest(lab, tmp_path) -> None:
    """CI clones often live in /tmp: the guest must see the host's /tmp, not an empty one."""
    script = tmp_path / "hello.py"
    script.write_text("import sys; print('seen from', sys.argv[1])\n")
    result = lab.run([sys.executable, str(script), "guest"])
    assert result.status == 0, result.stderr.decode()
    assert result.text.strip() == "seen from guest"
