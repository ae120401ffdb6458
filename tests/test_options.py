"""Run options are declared once (genbench.options); the CLI, suites, checks and README derive from them."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from genbench.cli import main
from genbench.options import markdown_table
from genbench.protocol import Protocol, RunRequest, run_options
from genbench.suite import KEYS, Suite

ROOT = Path(__file__).resolve().parents[1]


def test_readme_option_table_is_the_declarations() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- options:start -->\n(.*?)<!-- options:end -->", readme, re.S)
    assert block, "README.md lost its <!-- options:start/end --> markers"
    assert block.group(1) == markdown_table(run_options()), (
        "README's option table differs from the declarations; paste the output of "
        "python -c 'from genbench.options import markdown_table; from genbench.protocol import run_options; "
        'print(markdown_table(run_options()), end="")\''
    )


def test_every_declared_field_is_a_flag_a_suite_key_and_a_suite_field() -> None:
    options = run_options()
    declared = {f.name for cls in (Protocol, RunRequest) for f in dataclasses.fields(cls)} - {"protocol"}
    assert {o.name for o in options} == declared  # no field of the two without a declaration
    assert set(KEYS) == {o.key for o in options}
    assert {f.name for f in dataclasses.fields(Suite)} == {*KEYS, "source", "check"}  # check: genbench check's table


def test_help_shows_every_option_with_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for opt in run_options():
        assert opt.flag in text, opt.flag
    assert "--eval-samples <int> generated samples per cell" in text and "[default: 1000]" in text
    assert "--download / --no-download" in text and "[default: download]" in text


def test_flags_and_files_share_one_range_check(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["run", "--models", "gan", "--kid-subsets", "0", "--out", str(tmp_path / "a")]) == 2
    assert capsys.readouterr().err == "error: --kid-subsets 0: must be an integer >= 1\n"
    suite = tmp_path / "s.toml"
    suite.write_text('models = ["gan"]\nkid_subsets = 0\n')
    assert main(["run", "--config", str(suite), "--out", str(tmp_path / "b")]) == 2
    assert capsys.readouterr().err == f"error: {suite}: 'kid_subsets' must be an integer >= 1, got 0\n"


# A dummy option declared on RunRequest, and nothing else: the flag, its --help line, the suite key
# with its type and range checks, the runner's check and the README row must all follow.
DUMMY = textwrap.dedent(
    """
    import dataclasses, sys
    from pathlib import Path
    import genbench.protocol as declarations
    from genbench.options import option

    @dataclasses.dataclass(frozen=True)
    class RunRequest(declarations.RunRequest):
        dummy_knob: int = option("a knob only this test has", "int", 3, minimum=1)

    declarations.RunRequest = RunRequest  # the one declaration; nothing else is touched

    import genbench.run.runner
    from genbench.cli import main
    from genbench.options import markdown_table
    from genbench.protocol import run_options
    from genbench.suite import load_suite

    out = Path(sys.argv[1])
    row = "| `--dummy-knob` | `dummy_knob` | integer | `3` | a knob only this test has (>= 1) |"
    assert row in markdown_table(run_options())
    captured, real_run_grid = [], genbench.run.runner.run_grid
    genbench.run.runner.run_grid = lambda request, on_event=None: captured.append(request) or sys.exit(0)
    try:
        main(["run", "--models", "gan", "--dummy-knob", "5", "--out", str(out)])
    except SystemExit:
        pass
    genbench.run.runner.run_grid = real_run_grid
    assert captured[0].dummy_knob == 5, captured
    (out.parent / "s.toml").write_text('models = ["gan"]\\ndummy_knob = 7\\n')
    assert load_suite(out.parent / "s.toml").request().dummy_knob == 7
    assert load_suite(out.parent / "s.toml").override(dummy_knob=2).request().dummy_knob == 2
    print("exit", main(["run", "--models", "gan", "--dummy-knob", "0", "--out", str(out)]), file=sys.stderr)
    (out.parent / "t.toml").write_text('models = ["gan"]\\ndummy_knob = "x"\\n')
    print("exit", main(["run", "--config", str(out.parent / "t.toml"), "--out", str(out)]), file=sys.stderr)
    main(["run", "--help"])
    """
)


def test_a_new_option_is_one_declaration(tmp_path: Path) -> None:
    script = tmp_path / "dummy.py"
    script.write_text(DUMMY)
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "error: --dummy-knob 0: must be an integer >= 1\nexit 2\n" in proc.stderr
    assert f"error: {tmp_path / 't.toml'}: 'dummy_knob' must be an integer, got 'x'\nexit 2\n" in proc.stderr
    assert "--dummy-knob <int>" in proc.stdout and "a knob only this test has  [default: 3]" in proc.stdout
    assert not (tmp_path / "out").exists()  # the bad values stopped before any work
