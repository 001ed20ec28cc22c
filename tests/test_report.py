"""report.md and the README's results table: headline metrics with unit, seed/paper figure, bar, retrained value."""

import ast
import base64
import inspect
import json
import logging
import os
import shutil
import subprocess
import textwrap

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from unlearnlab.course import notebooks as nbs
from unlearnlab.course import report as R
from unlearnlab.course import run as runner
from unlearnlab.lessons import catalog
from unlearnlab.lessons.base import Bar
from unlearnlab.lessons.catalog import LESSONS

ROOT = nbs.course_root()


def _code_trees(stem):
    for cell in nbs.read(ROOT / "solutions" / f"{stem}.ipynb").cells:
        if cell.cell_type == "code":
            try:
                yield cell, ast.parse(cell.source)
            except SyntaxError:  # a cell magic
                continue


def _returned_keys(stem, callee):
    """The keys of the dict literal that the lesson's ``callee`` (a Name or Attribute node) returns."""
    name = callee.id if isinstance(callee, ast.Name) else callee.attr
    module = next(m for m in vars(catalog).values() if getattr(m, "LESSON", None) is LESSONS[stem])
    tree = ast.parse(textwrap.dedent(inspect.getsource(getattr(module, name))))
    returns = [n.value for n in ast.walk(tree) if isinstance(n, ast.Return) and isinstance(n.value, ast.Dict)]
    return {key.value for value in returns for key in value.keys if isinstance(key, ast.Constant)}


def _recorded_keys(stem):
    """The keywords of the notebook's record(...) call; ``record(**helper(...))`` reads the lesson helper's keys."""
    keys = set()
    for _, tree in _code_trees(stem):
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "record":
                for kw in node.keywords:
                    if kw.arg:
                        keys.add(kw.arg)
                    elif isinstance(kw.value, ast.Call):
                        keys |= _returned_keys(stem, kw.value.func)
    return keys


@pytest.mark.parametrize("stem", sorted(LESSONS))
def test_every_headline_key_is_one_the_notebook_records(stem):
    recorded = _recorded_keys(stem)
    named = {k for e in R.headlines(stem) for k in (e.key, e.retrained) if k}
    assert named <= recorded, f"{stem} records no {sorted(named - recorded)}: update its lesson's HEADLINES"


def test_bars_compare_in_their_direction_and_say_whether_a_check_enforces_them():
    assert Bar(">=", 98.5).passes(98.5) and not Bar(">=", 98.5).passes(98.49)
    assert Bar("<=", 1.0).passes(1.0) and not Bar("<=", 1.0).passes(1.01)
    assert str(Bar(">=", 99.25)) == "≥ 99.25" and str(Bar("<=", 1.0, graded=False)) == "≤ 1 (target)"
    lesson = LESSONS["01_relabel_freeze"]
    assert lesson.headline("unlearned_modified_acc").bars.get("full") == Bar(">=", 99.25)
    assert lesson.headline("finetune_seconds").bars.get("quick") is None
    with pytest.raises(KeyError, match="no headline metric"):
        lesson.headline("nonsense")


def test_a_notebook_table_has_unit_reference_bar_verdict_and_the_retrained_value_then_unknown_keys():
    metrics = {
        "answer": 42.0,
        "unlearned_test_acc": 89.77,
        "retrained_test_acc": 89.84,
        "unlearned_modified_acc": 98.4,
        "unlearned_class6_acc": 0.0,
    }
    lines = R.metrics_table("01_relabel_freeze", metrics, "quick")
    assert lines[0] == "| metric | this run | unit | seed/paper | bar (quick) | pass/fail | retrained |"
    modified = "| relabelled model, test accuracy on the modified labels (6 read as 3) | 98.40 | % |"
    assert f"{modified} 99.25 % (Shani, Fabbri 2024) | ≥ 98.5 | FAIL |  |" in lines
    assert (
        "| relabelled model, class 6 on the original labels | 0.00 | % | 0.00 % (Shani, Fabbri 2024) | ≤ 1 | PASS |  |"
        in lines
    )
    test_row = (
        "| relabelled model, test accuracy on the original labels | 89.77 | % | 89.79 % (Shani, Fabbri 2024) |  |  "
        "| 89.84 |"
    )
    assert test_row in lines
    assert "| fine-tuning time (output layer only) | not recorded | s |  |  |  |  |" in lines
    # headline rows keep their declared order; the retrained key is not repeated; other keys follow, as before
    assert lines.index(f"{modified} 99.25 % (Shani, Fabbri 2024) | ≥ 98.5 | FAIL |  |") < lines.index(test_row)
    assert lines[-3:] == ["| metric | value |", "|---|---|", "| answer | 42.00 |"]
    assert not any(line.startswith("| retrained_test_acc") for line in lines)


def test_a_course_target_is_met_or_not_and_an_unreached_index_is_flagged():
    metrics = {"gkt_retain_acc": 53.3, "retrained_retain_acc": 99.1, "ain_gkt": 1.9, "ain_gkt_reached": False}
    lines = R.metrics_table("04_zero_shot", metrics, "quick")
    gkt = "| GKT (β = 250), retain accuracy (the rule's snapshot, or the final student when it never fired)"
    gkt += " | 53.30 | % |"
    assert f"{gkt} 97.12 % (Chundawat et al., quoted by the CS772 report) | ≥ 90 (target) | not met | 99.10 |" in lines
    assert any(
        line.startswith("| anamnesis index, GKT (β = 250) at the snapshot") and "| 1.90 (not reached) |" in line
        for line in lines
    )
    assert any("lower bound" in line for line in lines)
    assert "not reached" not in "\n".join(R.metrics_table("04_zero_shot", {"ain_gkt": 1.0}, "quick"))


def test_a_notebook_without_headlines_keeps_the_plain_table():
    assert R.metrics_table("99_tiny", {"answer": 42.0}, "quick") == [
        "| metric | value |",
        "|---|---|",
        "| answer | 42.00 |",
    ]


def test_plot_titles_come_from_the_plotting_calls_in_source_order():
    source = (
        'plot_confusion(cm, "original model")\n'
        'plot_scaling(a, b, c, title="students")\n'
        'ax.set_title("panel")\n'
        "plot_history(history)\n"  # no title given: nothing to report
    )
    assert R.plot_titles(source) == ["original model", "students", "panel"]
    assert R.plot_titles("%%time\nplot_confusion(cm, 'x')") == []


def _png_output():
    return new_output("display_data", data={"image/png": base64.b64encode(b"png bytes").decode(), "text/plain": "fig"})


def test_report_links_each_figure_with_a_caption(tmp_path):
    nb = new_notebook(
        cells=[
            new_markdown_cell("# 99 · tiny\n\n## 1. The original model\n\ntext"),
            new_code_cell('plot_confusion(cm, "original model")', outputs=[_png_output()]),
            new_markdown_cell("### Q1 · Two figures"),
            new_code_cell("draw()\ndraw()", outputs=[_png_output(), _png_output()]),
        ]
    )
    nbs.write(nb, tmp_path / "99_tiny.ipynb")
    results = {
        "profile": "quick",
        "device": "CPU (2 cores)",
        "python": "3.11",
        "versions": {"torch": "2"},
        "started": "today",
        "total_seconds": 3.0,
        "notebooks": {"99_tiny": {"status": "ok", "seconds": 3.0, "metrics": {"answer": 42.0}, "error": None}},
    }
    text = R.write_report(results, tmp_path).read_text()
    assert "![original model (1. The original model)](figures/99_tiny-01.png)" in text
    assert "*Figure 1: original model (1. The original model)*" in text
    assert (
        "*Figure 2: Q1 · Two figures, figure 1 of 2*" in text and "*Figure 3: Q1 · Two figures, figure 2 of 2*" in text
    )
    assert (tmp_path / "figures" / "99_tiny-03.png").read_bytes() == b"png bytes"
    assert "| 99_tiny | ok | 3 |" in text and "| answer | 42.00 |" in text


FULL_RUN = {
    "profile": "full",
    "seed": 0,
    "device": "CPU (2 cores)",
    "started": "2026-11-25T19:49:28+00:00",
    "notebooks": {
        "01_relabel_freeze": {
            "status": "ok",
            "seconds": 1867.7,
            "metrics": {"unlearned_modified_acc": 99.26, "unlearned_class6_acc": 0.0, "unlearned_test_acc": 89.77},
        },
    },
}


def test_the_readme_table_holds_the_summary_metrics_of_a_run():
    text = R.readme_results(FULL_RUN)
    assert "Profile `full`, seed 0, on CPU (2 cores)" in text and "01 31 min (ok)" in text
    row = "| 01 | relabelled model, test accuracy on the modified labels (6 read as 3) | 99.26 % |"
    assert f"{row} 99.25 % (Shani, Fabbri 2024) | ≥ 99.25 | PASS |  |" in text.splitlines()
    assert "test accuracy on the original labels" not in text  # not a summary metric
    assert "No full-profile run" in R.readme_results(None)


def test_sync_readme_rewrites_only_the_generated_section(tmp_path):
    readme, results = tmp_path / "README.md", tmp_path / "course_full.json"
    readme.write_text(f"# title\n\n{R.README_BEGIN}\nold table\n{R.README_END}\n\n## after\n")
    results.write_text(json.dumps(FULL_RUN))
    assert R.sync_readme(readme, results) is True
    assert (
        readme.read_text() == f"# title\n\n{R.README_BEGIN}\n{R.readme_results(FULL_RUN)}\n{R.README_END}\n\n## after\n"
    )
    assert R.sync_readme(readme, results) is False


def test_the_readmes_headline_table_is_what_the_recorded_run_renders():
    path = ROOT / R.COURSE_RESULTS
    results = json.loads(path.read_text()) if path.is_file() else None
    text = (ROOT / "README.md").read_text()
    start, end = text.index(R.README_BEGIN) + len(R.README_BEGIN), text.index(R.README_END)
    assert text[start:end].strip() == R.readme_results(results), "run `make readme` to regenerate it"


@pytest.mark.parametrize(("before", "inside", "after"), [(None, "1", None), ("", "1", ""), ("0", "0", "0")])
def test_progress_bars_are_off_in_executed_notebooks_unless_the_caller_chose(monkeypatch, before, inside, after):
    if before is None:
        monkeypatch.delenv("TQDM_DISABLE", raising=False)
    else:
        monkeypatch.setenv("TQDM_DISABLE", before)
    with runner._progress_bars_off():
        assert os.environ.get("TQDM_DISABLE") == inside
    assert os.environ.get("TQDM_DISABLE") == after


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize(("env", "expected"), [(None, "[1]"), ("0", "[0]")])
def test_make_exports_tqdm_disable_for_notebook_runs(env, expected):
    environ = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"} | ({"TQDM_DISABLE": env} if env else {})
    probe = subprocess.run(
        ["make", "-s", "--no-print-directory", "--eval", 'tqdm-probe: ; @echo "[$$TQDM_DISABLE]"', "tqdm-probe"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == expected


def test_the_kernel_filter_drops_only_the_plain_tcp_warning():
    def record(message):
        return logging.LogRecord("IPKernelApp", logging.WARNING, __file__, 1, message, None, None)

    drop = runner.KernelLogFilter()
    assert not drop.filter(record(runner.TCP_WARNING + ". All communication (including code and outputs) ..."))
    assert drop.filter(record("Kernel died")) and drop.filter(record("WARNING | something else about TCP"))


def test_a_run_shows_no_kernel_tcp_warning_and_no_progress_bars(tmp_path, monkeypatch, capfd):
    import papermill

    monkeypatch.setenv("TQDM_DISABLE", "")  # what the Makefile used to export
    nb = new_notebook(cells=[new_code_cell("import os\nprint(repr(os.environ.get('TQDM_DISABLE')))")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbs.write(nb, tmp_path / "97_env.ipynb")
    # without the filter, the kernel's warning reaches this process's stderr: the test can see it
    papermill.execute_notebook(str(tmp_path / "97_env.ipynb"), str(tmp_path / "plain.ipynb"), progress_bar=False)
    assert runner.TCP_WARNING in capfd.readouterr().err
    (tmp_path / "out").mkdir()
    with runner._progress_bars_off():  # as run_all does around each notebook
        outcome = runner.execute(tmp_path / "97_env.ipynb", tmp_path / "out", {}, timeout=120)
    assert outcome.status == "ok", outcome.error
    assert runner.TCP_WARNING not in capfd.readouterr().err
    printed = nbs.read(tmp_path / "out" / "97_env.ipynb").cells[-1].outputs[0]["text"]
    assert printed.strip() == "'1'"
