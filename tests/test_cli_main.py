"""The ``dnatrack`` entry point: every subcommand module is reachable from the command line."""

from __future__ import annotations

import pkgutil

import pytest

import dnatrack.cli
from dnatrack.cli import build_parser, main


def _subcommand_modules() -> list[str]:
    return sorted(info.name for info in pkgutil.iter_modules(dnatrack.cli.__path__)
                  if not info.name.startswith("_"))


def test_every_subcommand_module_is_registered():
    registered = {module.__name__.rsplit(".", 1)[1] for module in dnatrack.cli.SUBCOMMANDS}
    assert set(_subcommand_modules()) == registered


@pytest.mark.parametrize(
    "command",
    ["convert", "simulate", "panel-stats", "match", "calibrate", "assign", "self-assign",
     "species", "db", "admin", "serve", "custody", "demo", "worker"],
)
def test_each_documented_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_status:
        build_parser().parse_args([command, "--help"])
    assert exit_status.value.code == 0
    assert f"dnatrack {command}" in capsys.readouterr().out


def test_no_command_prints_usage_and_fails(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out
