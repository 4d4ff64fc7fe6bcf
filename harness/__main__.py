"""``python -m harness`` is ``rnn-bench``."""

from harness.cli import entry

if __name__ == "__main__":
    entry()
