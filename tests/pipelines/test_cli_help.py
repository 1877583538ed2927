"""Every command's --help: flags read as flags, nothing is cut off; and --version."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import typer
from pydantic import BaseModel
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.cli.flags import with_model_flags
from pipelines.cli.help_format import Command
from pipelines.images import package_version
from pipelines.version import CODE_ROOT

COMMANDS = [info.name for info in app.registered_commands]


def help_text(*args: str, columns: int = 100) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_flags_render_as_flags_and_option_names_are_whole(command):
    text = help_text(*([command] if command else []))
    assert "<bool>" not in text
    # an option name cut short by a too narrow column ("--no-allow-empty-spli…")
    assert not re.search(r"--[\w-]+…", text), text
    assert re.search(r"--help +Show this message", text)


def test_boolean_options_of_the_models_get_a_flag_each_way():
    text = help_text("prepare")
    assert re.search(r"--drop-overlaps +drop val/test tiles", text)
    assert re.search(r"--no-drop-overlaps +--drop-overlaps off", text)
    assert "--no-allow-empty-splits" in text


class _Options(BaseModel):
    fast: bool = True
    name: str = "x"


def _invoke(command, args: list[str]):
    """``command`` alone as a typer app with segpipe's Command class, run with ``args``."""
    single = typer.Typer()
    single.command(cls=Command)(command)
    return CliRunner().invoke(single, args)


@with_model_flags({"opts": _Options})
def _command(*, overrides: dict) -> None:
    typer.echo(json.dumps(overrides))


@pytest.mark.parametrize(("args", "expected"), [
    ([], {}), (["--fast"], {"opts": {"fast": True}}), (["--no-fast"], {"opts": {"fast": False}}),
    (["--no-fast", "--name", "y"], {"opts": {"fast": False, "name": "y"}})])
def test_a_switch_and_its_negation_set_the_field(args, expected):
    result = _invoke(_command, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == expected


def test_a_switch_and_its_negation_together_are_refused():
    result = _invoke(_command, ["--fast", "--no-fast"])
    assert result.exit_code == 2
    assert "give --fast or --no-fast, not both" in result.output


class _Mappings(BaseModel):
    aliases: dict[str, str] = {}
    values: dict[int, int] | None = None


@with_model_flags({"maps": _Mappings})
def _mapping_command(*, overrides: dict) -> None:
    typer.echo(json.dumps(_Mappings.model_validate(overrides.get("maps", {})).model_dump()))


@pytest.mark.parametrize(("args", "expected"), [
    (["--aliases", "tea=class_1", "--aliases", "{Tea: class_1, bg: class_0}"],
     {"aliases": {"tea": "class_1", "Tea": "class_1", "bg": "class_0"}, "values": None}),
    (["--values", "0=0", "--values", "255=1", "--aliases", " a = b "],
     {"aliases": {"a": "b"}, "values": {"0": 0, "255": 1}}),
    (["--values", "{0: 0, 255: 1}", "--values", "255=1"],
     {"aliases": {}, "values": {"0": 0, "255": 1}}),
])
def test_a_mapping_field_takes_its_flag_once_per_pair_or_as_a_mapping(args, expected):
    result = _invoke(_mapping_command, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == expected


@pytest.mark.parametrize(("args", "problem"), [
    (["--aliases", "tea"], "--aliases 'tea': expected KEY=VALUE"),
    (["--aliases", "=tea"], "--aliases '=tea': expected KEY=VALUE"),
    (["--aliases", "[a, b]"], "--aliases '[a, b]': expected KEY=VALUE"),
    (["--aliases", "{a: [b}"], "--aliases '{a: [b}': not a mapping"),
    (["--aliases", "tea=a", "--aliases", "tea=b"], "--aliases: tea is given twice (tea=a, "
                                                   "tea=b)"),
])
def test_a_mapping_flag_that_is_no_mapping_is_refused_naming_it(args, problem):
    result = _invoke(_mapping_command, args)
    assert result.exit_code == 2
    assert problem in " ".join(result.output.replace("│", " ").split()), result.output


def test_version_names_the_package_and_the_checkout_commit():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    head = subprocess.run(["git", "-C", str(CODE_ROOT), "rev-parse", "--short=12", "HEAD"],
                          capture_output=True, text=True)
    expected = f"segpipe {package_version()}"
    if head.returncode == 0:  # a checkout (not an installed wheel)
        expected += f" (git {head.stdout.strip()}"
    assert result.output.startswith(expected), result.output


def test_a_command_description_wraps_once_at_the_terminal_width():
    # The docstring breaks "resumes that run: cached" / "data steps" at 96 columns; on an
    # 80-column terminal that break must not leave a ragged half-line.
    text = help_text("run", columns=80)
    lines = [line.strip() for line in text.splitlines()]
    paragraph = next(i for i, line in enumerate(lines) if line.startswith("Running a config"))
    assert all(len(line) > 60 for line in lines[paragraph:paragraph + 2]), lines[paragraph:]


def test_help_does_not_import_scipy_spatial():
    """Every command imports the tile step's module; its crop search's k-d tree (0.2-0.4 s of
    import) is imported only when the search runs."""
    import os
    import sys

    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "pipelines.cli", "--help"],
                          cwd=CODE_ROOT, env={**os.environ, "PYTHONPATH": str(CODE_ROOT)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")}
    assert "pipelines.cli" in imported and "scipy.spatial" not in imported
