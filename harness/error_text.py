"""Error text fit to store and print: plain (no terminal escape codes) and summed up in one line.

Keras wraps an exception raised inside a layer call in text of its own, the real message in bold
(ANSI escape codes) between two lines of context::

    OperatorNotAllowedInGraphError: Exception encountered when calling VariantCell.call().

    \\x1b[1mUsing a symbolic `tf.Tensor` as a Python `bool` is not allowed. ...\\x1b[0m

    Arguments received by VariantCell.call():
      • inputs=tf.Tensor(shape=(None, 2), dtype=float32)
      • training=False

so the last line of such a traceback, the usual one-line summary, says ``training=False``.
``headline`` finds the real message instead.
"""

from __future__ import annotations

import re

# CSI sequences (colours, bold: ESC [ ... m), OSC sequences (ESC ] ... BEL or ESC \), two-byte escapes
ANSI_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
KERAS_WRAPPED = re.compile(r"^\s*(?P<type>[\w.]+): Exception encountered when calling ")
KERAS_ARGUMENTS = "Arguments received by "


def plain(text: str) -> str:
    """``text`` without terminal escape codes."""
    return ANSI_ESCAPE.sub("", text)


def headline(text: str) -> str:
    """The one line that says what went wrong: the message Keras wrapped (with its exception type)
    when there is one, else the last non-empty line (a traceback's ``Type: message``); plain text."""
    lines = [line.strip() for line in plain(text).splitlines()]
    for i in range(len(lines) - 1, -1, -1):
        found = KERAS_WRAPPED.match(lines[i])
        if found:
            message = []
            for line in lines[i + 1 :]:
                if line.startswith(KERAS_ARGUMENTS):
                    break
                message.append(line)
            if any(message):
                return f"{found['type'].rsplit('.', 1)[-1]}: {' '.join(m for m in message if m)}"
    return next((line for line in reversed(lines) if line), "")
