import json

from click.testing import CliRunner

from usedge.cli.main import cli


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_every_verb_has_help():
    for args in ([], ["data"], ["data", "phantom"], ["data", "phantom-cine"], ["data", "validate"],
                 ["data", "summary"], ["tasks"]):
        result = run(*args, "--help")
        assert result.exit_code == 0 and "Usage:" in result.output, args


def test_tasks_json_lists_all():
    rows = json.loads(run("tasks", "--json").output)
    assert len(rows) == 27 and rows[0]["id"] == "FUGC" and rows[0]["outputs"] == ["FUGC.points"]


def test_unknown_task_is_a_clean_error():
    result = CliRunner().invoke(cli, ["tasks", "--tasks", "fetal_hed"])
    assert result.exit_code == 2
    assert "error: Unknown task 'fetal_hed'. Did you mean 'fetal_head'" in result.output
    assert "Traceback" not in result.output


def test_validate_and_summary(tiny_dataset):
    root, _ = tiny_dataset
    result = run("data", "validate", str(root))
    assert result.exit_code == 0 and "train: 54 good sample(s), 0 problem(s)" in result.output
    assert "fetal_abdomen_multi" in run("data", "summary", str(root)).output
    # break one mask: validate must fail and name the file and line
    csv_path = root / "train" / "csv_files" / "breast_2cls.csv"
    csv_path.write_text(csv_path.read_text().replace(",2,0\n", ",2,9\n", 1).replace(",2,1\n", ",2,9\n", 1))
    bad = CliRunner().invoke(cli, ["data", "validate", str(root)])
    assert bad.exit_code == 1 and "breast_2cls.csv:2: class label 9 outside 0..1" in bad.output


def test_validate_on_a_folder_without_splits(tmp_path):
    result = CliRunner().invoke(cli, ["data", "validate", str(tmp_path)])
    assert result.exit_code == 2 and "has no train/csv_files" in result.output
