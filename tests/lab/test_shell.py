"""Input to guest commands: a pipe (Lab.run(input=...)) and a terminal (hwkit lab shell)."""

import os
import subprocess
import sys

import pytest

from hwkit.lab.machine import Lab


@pytest.mark.lab("usb", host=True)
def test_input_reaches_the_command_byte_for_byte(lab: Lab) -> None:
    data = bytes(range(256)) * 200 + os.urandom(5000)  # more than one agent chunk
    result = lab.run(["cat"], input=data)
    assert result.status == 0 and result.stdout == data


@pytest.mark.lab("usb", host=True)
def test_a_pty_command_has_a_terminal_and_its_size(lab: Lab) -> None:
    output = bytearray()
    shell = lab.spawn(["sh"], stdin="pty", stdout=output.extend, size=(33, 101))
    shell.write(b"stty size; tty; echo $((6*7)); exit 3\n")
    result = shell.wait(60)
    text = output.decode(errors="replace")
    assert result.status == 3, text
    assert "33 101" in text and "/dev/pts/" in text and "42" in text, text


@pytest.mark.lab("pci", host=True)
def test_hwkit_lab_shell_reads_commands_from_a_pipe() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hwkit.tools.cli", "lab", "shell", "--profile", "pci", "--", "sh"],
        input=b"echo from-the-guest $(uname -r)\nexit 4\n",
        capture_output=True,
        timeout=600,
    )
    assert done.returncode == 4, done.stderr.decode()
    assert b"from-the-guest 6." in done.stdout, done.stdout
