"""The command line as den hands it to Hydra (den/config/overrides.py)."""

from __future__ import annotations

import pytest

from den.config.overrides import prepare_command_line
from den.errors import ConfigError


def test_settings_are_set_or_added_so_den_names_a_misspelled_key():
    assert prepare_command_line(["seed=1", "trainer.max_iter=5"]) == [
        "++seed=1",
        "++trainer.max_iter=5",
    ]


def test_group_choices_flags_and_hydra_settings_pass_unchanged():
    args = ["-m", "+experiment=pmnist", "strategy=den,ewc", "hydra/launcher=joblib"]
    args += ["hydra.launcher.n_jobs=2", "~logger", "--cfg", "job"]
    assert prepare_command_line(args) == args


def test_a_preset_comes_after_the_experiment_and_before_trailing_flags():
    args = ["debug=smoke", "+experiment=pmnist", "seed=2", "--cfg", "job"]
    assert prepare_command_line(args) == [
        "+experiment=pmnist",
        "++seed=2",
        "+debug=smoke",
        "--cfg",
        "job",
    ]
    assert prepare_command_line(["debug=smoke", "--cfg", "job"]) == ["+debug=smoke", "--cfg", "job"]


@pytest.mark.parametrize(
    ("arg", "hint"),
    [
        ("strategy=ewcc", "did you mean strategy=ewc?"),
        ("strategy=den,den_schema", "did you mean strategy=den?"),
        ("+experiment=pmnsit", "did you mean experiment=pmnist?"),
        ("debug=smok", "did you mean debug=smoke?"),
    ],
)
def test_an_unknown_group_choice_is_refused_with_the_closest(arg, hint):
    with pytest.raises(ConfigError) as err:
        prepare_command_line([arg])
    assert hint in str(err.value) and "use one of" in str(err.value)


def test_with_another_search_path_group_choices_are_left_to_hydra():
    args = ["hydra.searchpath=[file:///elsewhere]", "strategy=mine"]
    assert prepare_command_line(args) == args


def test_help_lists_the_choices_and_no_schema():
    import subprocess
    import sys

    from conftest import REPO_ROOT

    for args in (["--help"], []):  # a bare python -m den.train shows the help too
        proc = subprocess.run(
            [sys.executable, "-m", "den.train", *args],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        page = proc.stdout
        assert "+experiment=NAME" in page and "den_pmnist" in page and "debug=NAME" in page
        assert "schema" not in page and "powered by Hydra" not in page
        assert max(len(line) for line in page.splitlines()) <= 100
