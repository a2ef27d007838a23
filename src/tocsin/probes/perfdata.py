"""Nagios plugin output: the status text and the performance data.

A plugin prints ``TEXT | PERFDATA`` on its first line, then optionally long
output lines, the first of which may carry more perfdata after a ``|``
(the Nagios plugin API, "Plugin Output")::

    DISK OK - free space: / 3326 MB (56%) | /=2643MB;5948;5958;0;5968
    / 15272 MB (77%);
    /boot 68 MB (69%); | /boot=68MB;88;93;0;98
    /home=69357MB;253404;253409;0;253414

Each perfdata item is ``'label'=value[UOM];[warn];[crit];[min];[max]``; a
label with spaces is single-quoted (``''`` is a quote inside it). :func:`parse`
turns every well-formed item into a value rules can compare, named by its
label lower-cased with anything outside ``[a-z0-9_.]`` turned into ``_``
(``'Free Space'`` → ``free_space``), and converted to the units rules compare:

- time ``s``, ``ms``, ``us`` → milliseconds;
- bytes ``B``, ``KB``, ``MB``, ``GB``, ``TB`` → bytes, 1000-based like the
  sizes of the rule language (``used > 500MB`` and a plugin's ``500MB`` agree);
- ``%`` and ``c`` (a counter) and no unit → the number as it is.

A value ``U`` (the plugin could not determine it) is skipped. An item that does
not parse (no ``=``, not a number, an unknown unit) is kept as text in
``malformed`` and the rest parsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_UNITS: dict[str, float] = {
    "": 1.0, "%": 1.0, "c": 1.0,
    "s": 1000.0, "ms": 1.0, "us": 0.001,
    "B": 1.0, "KB": 1000.0, "MB": 1000.0**2, "GB": 1000.0**3, "TB": 1000.0**4,
}
_VALUE = re.compile(r"(?P<number>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)(?P<uom>[A-Za-z%]*)")
_NAME_BAD = re.compile(r"[^a-z0-9_.]")


@dataclass(frozen=True, slots=True)
class PerfValue:
    """One parsed item: ``value`` converted (ms, bytes), ``raw`` as the plugin wrote it."""

    label: str
    name: str
    value: float
    uom: str
    raw: str


@dataclass(slots=True)
class PluginOutput:
    """A plugin's status text, long output, perfdata and the perfdata items it refused."""

    text: str = ""
    long_output: str = ""
    perfdata: list[PerfValue] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # labels whose value was ``U``
    malformed: list[str] = field(default_factory=list)

    def values(self) -> dict[str, float]:
        """Each item's value by name (a repeated name: the first one)."""
        values: dict[str, float] = {}
        for item in self.perfdata:
            values.setdefault(item.name, item.value)
        return values


def value_name(label: str) -> str:
    """``'Free Space'`` → ``free_space``: a name the rule language accepts."""
    name = _NAME_BAD.sub("_", label.strip().lower().replace(" ", "_"))
    if not name or not (name[0].isalpha() or name[0] == "_"):
        name = "_" + name
    return name


def _items(text: str) -> list[tuple[str | None, str]]:
    """Split perfdata into (label, rest) pairs; label None for an item with no ``=``."""
    items: list[tuple[str | None, str]] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start = i
        label: str | None
        if text[i] == "'":
            i += 1
            chars: list[str] = []
            while i < n:
                if text[i] == "'":
                    if i + 1 < n and text[i + 1] == "'":
                        chars.append("'")
                        i += 2
                        continue
                    i += 1
                    break
                chars.append(text[i])
                i += 1
            label = "".join(chars)
            if i < n and text[i] == "=":
                i += 1
            else:
                label = None
        else:
            while i < n and not text[i].isspace() and text[i] != "=":
                i += 1
            label = text[start:i]
            if i < n and text[i] == "=":
                i += 1
            else:
                label = None
        while i < n and not text[i].isspace():
            i += 1
        items.append((label, text[start:i]))
    return items


def parse_perfdata(text: str, into: PluginOutput) -> None:
    """Add the items of one perfdata string to ``into``."""
    for label, raw in _items(text):
        if label is None or not label.strip():
            into.malformed.append(raw)
            continue
        value_text = raw.rsplit("=", 1)[1] if "=" in raw else ""
        first = value_text.split(";", 1)[0]
        if first == "U":
            into.unknown.append(label)
            continue
        match = _VALUE.fullmatch(first)
        if match is None or match.group("uom") not in _UNITS:
            into.malformed.append(raw)
            continue
        number = float(match.group("number")) * _UNITS[match.group("uom")]
        into.perfdata.append(PerfValue(label, value_name(label), number, match.group("uom"), raw))


def parse(output: str) -> PluginOutput:
    """The status text, long output and perfdata of a plugin's ``output``."""
    lines = output.splitlines()
    result = PluginOutput()
    if not lines:
        return result
    text, _, perf = lines[0].partition("|")
    result.text = text.strip()
    parse_perfdata(perf, result)
    long_lines: list[str] = []
    in_perf = False
    for line in lines[1:]:
        if in_perf:
            parse_perfdata(line, result)
            continue
        before, bar, after = line.partition("|")
        long_lines.append(before.rstrip())
        if bar:
            in_perf = True  # every line after the first ``|`` of long output is perfdata
            parse_perfdata(after, result)
    result.long_output = "\n".join(long_lines).strip()
    return result
