"""The README and docs/ stay short, linked and runnable.

* README.md has at most 150 lines (a user's page; results and history live in docs/).
* Every relative markdown link in README.md and docs/**/*.md points at a file that exists, and its
  `#anchor` at a heading of the target file (GitHub's anchor rules).
* Every training command in a ```bash block (run_ddp.py by python or torchrun, ijepa-train, the bench
  scripts that take key=value overrides, the demo) uses config keys that exist: the overrides go
  through `make_config`. Every `python -m simple_ijepa.NAME --flag ...` command is accepted by that
  module's `parse_args`.
* The console scripts of pyproject.toml are the commands checked here, each runs the module its
  `python -m` name runs, and each is documented.

Fast: it imports the package and builds configs, nothing trains.
"""
from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path

import pytest
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MD_FILES = [README] + sorted((ROOT / "docs").rglob("*.md"))
MAX_README_LINES = 150

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE_SPAN = re.compile(r"`+[^`]*`+")

# Commands that run training and take `key=value` config overrides (the script's name as written).
TRAIN_SCRIPTS = ("simple_ijepa.train", "run_ddp.py", "scripts/train_ddp.py", "ijepa-train",
                 "bench/fashion_mnist_probe.py", "bench/gated_fashion_mnist.py", "bench/throughput.py")
# python -m simple_ijepa.NAME commands checked with that module's parse_args (console script aliases too).
TOOLS = {"evaluate": "evaluate", "visualize": "visualize", "export": "export", "gate_experiments": "gate_experiments",
         "finetune": "finetune", "ijepa-evaluate": "evaluate", "ijepa-visualize": "visualize",
         "ijepa-export": "export", "ijepa-gates": "gate_experiments", "ijepa-finetune": "finetune"}
DEMO = ("demo", "ijepa-demo")
OVERRIDE = re.compile(r"^(\+?[A-Za-z_][\w.]*)=(.*)$")
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
PLACEHOLDER_VALUE = re.compile(r"^(\.\.\.|<.*>|[A-Z][A-Z0-9_]*)$")  # ..., <path>, DIR, PATH, N


# --------------------------------------------------------------------------------------- markdown

def split_code(text: str) -> tuple[list[tuple[int, str]], list[tuple[str, list[str]]]]:
    """(prose lines with their numbers, fenced blocks as (language, lines))."""
    prose, blocks, block = [], [], None
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            if block is None:
                block = (line.strip().lstrip("`~").strip().split(" ")[0].lower(), [])
            else:
                blocks.append(block)
                block = None
            continue
        if block is None:
            prose.append((number, line))
        else:
            block[1].append(line)
    assert block is None, "a code fence is not closed"
    return prose, blocks


def github_anchor(heading: str) -> str:
    """GitHub's anchor of a heading: links reduced to their text, lowercase, punctuation removed
    (letters, digits, '_', '-' and spaces kept), spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for _, line in split_code(path.read_text(encoding="utf-8"))[0]:
        m = HEADING.match(line)
        if not m:
            continue
        slug = github_anchor(m.group(2))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def links(path: Path) -> list[tuple[int, str]]:
    found = []
    for number, line in split_code(path.read_text(encoding="utf-8"))[0]:
        for m in LINK.finditer(CODE_SPAN.sub("", line)):
            found.append((number, m.group(1)))
    return found


def broken_links(path: Path) -> list[str]:
    problems = []
    for number, target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http(s), mailto: not checked
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(ROOT)}:{number}: {target}"
        if not dest.exists():
            problems.append(f"{where}: no file {dest}")
        elif anchor:
            if dest.suffix != ".md":
                problems.append(f"{where}: an anchor into a file that is not markdown")
            elif anchor not in anchors(dest):
                problems.append(f"{where}: no heading with anchor #{anchor} in {dest.relative_to(ROOT)}")
    return problems


# --------------------------------------------------------------------------------------- commands

def bash_commands(path: Path) -> list[tuple[str, list[str]]]:
    """Each simple command of the ```bash blocks, as tokens: comments dropped, backslash
    continuations joined, `$(...)` replaced by a placeholder, split at &&, ||, ; and |."""
    commands = []
    for language, lines in split_code(path.read_text(encoding="utf-8"))[1]:
        if language not in ("bash", "sh", "shell", "console"):
            continue
        text = re.sub(r"\\\n", " ", "\n".join(lines))
        for line in text.splitlines():
            line = re.sub(r"\$\([^)]*\)", "$SUB", line)
            try:
                tokens = shlex.split(line, comments=True)
            except ValueError:  # an unparsable placeholder line
                continue
            command: list[str] = []
            for token in tokens + [";"]:
                if token in ("&&", "||", ";", "|"):
                    if command:
                        commands.append((f"{path.relative_to(ROOT)}: {line.strip()}", command))
                    command = []
                else:
                    command.append(token)
    return commands


def classify(tokens: list[str]) -> tuple[str, str, list[str]] | None:
    """('train' | 'tool' | 'demo', name, arguments) for a command this test checks, else None."""
    while tokens and ENV_ASSIGNMENT.match(tokens[0]):  # WANDB_MODE=offline python ...
        tokens = tokens[1:]
    if not tokens:
        return None
    if tokens[0] in TOOLS:
        return "tool", TOOLS[tokens[0]], tokens[1:]
    if tokens[0] in DEMO:
        return "demo", "demo", tokens[1:]
    for i, token in enumerate(tokens):
        if token.endswith(TRAIN_SCRIPTS):
            return "train", token, tokens[i + 1:]
    if tokens[0].startswith("python") and "-m" in tokens:
        i = tokens.index("-m")
        module = tokens[i + 1] if i + 1 < len(tokens) else ""
        if module.startswith("simple_ijepa."):
            name = module.split(".", 1)[1]
            if name in DEMO:
                return "demo", name, tokens[i + 2:]
            return "tool", name, tokens[i + 2:]
    return None


def overrides_of(arguments: list[str]) -> list[str]:
    """The key=value overrides of a training command (flags and their values skipped)."""
    return [a for a in arguments if OVERRIDE.match(a) and not a.startswith("-")]


def check_overrides(overrides: list[str]) -> str | None:
    """None if every key exists in the training config (and every concrete value fits it), else why not."""
    from simple_ijepa.training.trainer import make_config

    concrete, placeholders = [], []
    for item in overrides:
        key, value = OVERRIDE.match(item).groups()
        if "$" in value or PLACEHOLDER_VALUE.match(value):
            placeholders.append(key)
        else:
            concrete.append(item)
    try:
        cfg = make_config(concrete)
    except Exception as e:  # noqa: BLE001 - any rejection is the finding
        return f"{type(e).__name__}: {e}".splitlines()[0]
    missing = object()
    for key in placeholders:
        if key != "experiment" and OmegaConf.select(cfg, key, default=missing) is missing:
            return f"no config key {key!r}"
    return None


def tool_parser(name: str):
    """The parse_args of `python -m simple_ijepa.NAME` (the module, else its home under cli/)."""
    homes = [f"simple_ijepa.{name}", f"simple_ijepa.cli.{name}"]
    homes += ["simple_ijepa.cli.gates"] if name == "gate_experiments" else []
    for module in homes:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name and module.startswith(e.name):
                continue
            raise
        if hasattr(mod, "parse_args"):
            return mod.parse_args
    raise AssertionError(f"python -m simple_ijepa.{name}: no module with a parse_args")


def check_command(kind: str, name: str, arguments: list[str]) -> str | None:
    if kind == "train":
        return check_overrides(overrides_of(arguments))
    if kind == "demo":
        if {"-h", "--help"} & set(arguments):
            return None
        from simple_ijepa.cli.demo import pop_output

        arguments = pop_output(list(arguments))[0]  # --output FILE.json
        flags = [a for a in arguments if not OVERRIDE.match(a)]
        return f"the demo takes key=value overrides, not {flags}" if flags else check_overrides(arguments)
    try:
        tool_parser(name)(arguments)
    except SystemExit as e:
        return f"python -m simple_ijepa.{name} rejects {arguments} (exit {e.code})"
    return None


def documented_commands() -> list[tuple[str, tuple[str, str, list[str]]]]:
    out = []
    for path in MD_FILES:
        for where, tokens in bash_commands(path):
            checked = classify(tokens)
            if checked is not None:
                out.append((where, checked))
    return out


# --------------------------------------------------------------------------------------- tests

def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def test_docs_exist():
    assert len(MD_FILES) > 1, "no docs/**/*.md pages"
    assert (ROOT / "docs" / "feature_pca_digits.png").exists()


@pytest.mark.parametrize("path", MD_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    problems = broken_links(path)
    assert not problems, "\n".join(problems)


def test_anchor_rules():
    assert github_anchor("Configuration / knobs (Hydra)") == "configuration--knobs-hydra"
    assert github_anchor("Weights & Biases") == "weights--biases"
    assert github_anchor("Model (`model.*`, `IJEPAConfig`)") == "model-model-ijepaconfig"
    anchor = github_anchor("Why pretraining collapsed, and what fixed it")
    assert anchor == "why-pretraining-collapsed-and-what-fixed-it"


def test_documented_commands_are_accepted():
    commands = documented_commands()
    kinds = {checked[0] for _, checked in commands}
    assert {"train", "tool", "demo"} <= kinds, f"the parser found too few commands: {kinds}"
    problems = [f"{where}\n    {why}" for where, checked in commands if (why := check_command(*checked))]
    assert not problems, "documented commands that would fail:\n" + "\n".join(problems)


def test_checker_catches_mistakes():
    """The checks above would fail on a misspelled key, flag or value."""
    bad_key = classify(shlex.split("torchrun --standalone --nproc_per_node=1 run_ddp.py model.hiden_dim=3"))
    assert bad_key[0] == "train" and "hiden_dim" in check_command(*bad_key)
    assert check_command(*classify(shlex.split("python run_ddp.py ... model.hidden_dim=$W optim.lr=DIR")))
    assert check_command(*classify(shlex.split("python bench/fashion_mnist_probe.py --seeds 0 mask.kinds=random")))
    assert check_command(*classify(shlex.split("python run_ddp.py experiment=cpu_smal")))
    assert check_command(*classify(shlex.split("python -m simple_ijepa.demo model.hiden_dim=3")))
    assert check_command(*classify(shlex.split("python -m simple_ijepa.evaluate --ckpt_path x --clasifier logistic")))
    no_ckpt = "python -m simple_ijepa.export --timm out.safetensors"
    assert check_command(*classify(shlex.split(no_ckpt)))  # no --ckpt_path
    # and passes good ones
    good = "WANDB_MODE=offline python run_ddp.py ... experiment=cpu_small model.hidden_dim=192 logging.ckpt_path=auto"
    assert check_command(*classify(shlex.split(good))) is None
    gates = "python -m simple_ijepa.gate_experiments --ckpt_path x --split train"
    assert check_command(*classify(shlex.split(gates))) is None


def test_console_scripts_are_the_documented_commands():
    """pyproject's [project.scripts]: each is a command this file checks, runs the module of its
    `python -m simple_ijepa.NAME` twin (or the training command), and appears in README.md or docs/."""
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    text = "\n".join(p.read_text(encoding="utf-8") for p in MD_FILES)
    for script, target in scripts.items():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), target
        assert f"`{script}" in text or f"{script} " in text, f"{script} is not documented"
        if script in TOOLS:
            assert tool_parser(TOOLS[script]) is importlib.import_module(module).parse_args, script
        elif script in DEMO:
            assert importlib.import_module("simple_ijepa.demo").main is importlib.import_module(module).main
        else:
            assert script in TRAIN_SCRIPTS and module == "simple_ijepa.cli.train", script
