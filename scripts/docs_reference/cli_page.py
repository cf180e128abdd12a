"""docs/reference/cli.md: every ``crmgraph`` command, read from the argparse
parser ``crmgraph.cli.parser()`` builds (its help texts, options, choices and
defaults). The usage line is written here, not by argparse, whose wrapping
follows the terminal's width."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from crmgraph.cli import parser
from scripts.docs_reference.markdown import header, table


def page() -> str:
    root = parser()
    text = header(
        "Command line",
        "crmgraph/cli.py's argparse parser",
        f"{root.description} Every command below also takes the global options of "
        "`crmgraph` itself, written before the command. [Commands](../cli.md) is the "
        "same list at a glance.",
    )
    text += "\n## crmgraph\n\n" + usage("crmgraph", root) + options(root)
    for path, sub, about in commands(root, "crmgraph"):
        text += f"\n## {path}\n\n{about}\n\n" + usage(path, sub) + options(sub)
    return text


def commands(
    p: argparse.ArgumentParser, path: str
) -> Iterator[tuple[str, argparse.ArgumentParser, str]]:
    """Every command that runs something, depth first, with its help text."""
    for action in p._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {c.dest: c.help for c in action._choices_actions}
        for name, sub in action.choices.items():
            here = f"{path} {name}"
            if not any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
                yield here, sub, sentence(helps.get(name) or "")
            yield from commands(sub, here)


def shown(action: argparse.Action) -> list[argparse.Action]:
    hidden = isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS
    return [] if hidden else [action]


def arguments(p: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        a
        for action in p._actions
        if not isinstance(action, argparse._SubParsersAction)
        for a in shown(action)
    ]


def usage(path: str, p: argparse.ArgumentParser) -> str:
    words = [path]
    for a in arguments(p):
        word = a.option_strings[0] if a.option_strings else a.metavar or a.dest
        if a.option_strings and a.nargs != 0:
            word += " " + metavar(a)
        if a.option_strings and not a.required:
            word = f"[{word}]"
        if isinstance(a, argparse._AppendAction):
            word += "…"
        words.append(word)
    if any(isinstance(a, argparse._SubParsersAction) for a in p._actions):
        words.append("COMMAND …")
    return "```text\n" + " ".join(words) + "\n```\n"


def metavar(a: argparse.Action) -> str:
    if a.metavar:
        return str(a.metavar)
    if a.choices:
        return "{" + ",".join(str(c) for c in a.choices) + "}"
    return a.dest.upper()


def options(p: argparse.ArgumentParser) -> str:
    rows = [(names(a), about(a)) for a in arguments(p)]
    return "\n" + table(("argument", "description"), rows) if rows else ""


def names(a: argparse.Action) -> str:
    spelled = ", ".join(a.option_strings) or (a.metavar or a.dest)
    return f"`{spelled}`"


def sentence(text: str) -> str:
    """A help text as a sentence: capital first letter, full stop."""
    text = text.strip()
    if not text:
        return ""
    return text[0].upper() + text[1:] + ("" if text.endswith((".", ")")) else ".")


def about(a: argparse.Action) -> str:
    text = sentence(a.help or "")
    if a.choices and not a.metavar:
        text += " One of " + ", ".join(f"`{c}`" for c in a.choices) + "."
    if a.required and a.option_strings:
        text += " Required."
    if isinstance(a, argparse._AppendAction):
        text += " May be given more than once."
    elif a.default not in (None, False, argparse.SUPPRESS) and a.nargs != 0:
        text += f" Default: `{a.default}`."
    return text.strip()
