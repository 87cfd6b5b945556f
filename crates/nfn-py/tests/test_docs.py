"""The examples in docs/python.md and the README's Python section run as written."""

import re

import pytest

from conftest import ROOT, need_fashion


def python_blocks(path):
    text = (ROOT / path).read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("path", ["docs/python.md", "README.md"])
def test_examples_run_as_written(path, capsys, tmp_path, monkeypatch):
    need_fashion()
    monkeypatch.chdir(tmp_path)  # the examples write files (a saved model) where they run
    blocks = python_blocks(path)
    assert blocks, f"{path} has no python example"
    namespace = {}
    for code in blocks:  # later blocks use what earlier ones made, as in a notebook
        exec(compile(code, f"{path} example", "exec"), namespace)
    printed = capsys.readouterr().out
    if path == "docs/python.md":
        found = re.search(r"(\S+): (\d+)% on these 100 images \(its card: ([\d.]+)%\)", printed)
        assert found, printed
        acc, card = float(found.group(2)), float(found.group(3))
        # 100 images: within three binomial standard deviations of the card's accuracy.
        sd = 100 * (card / 100 * (1 - card / 100) / 100) ** 0.5
        assert abs(acc - card) <= 3 * sd + 1, printed
