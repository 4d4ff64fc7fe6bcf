"""``python -m harness`` is ``rnn-bench``."""

from harness.cli.main import entry

if __name__ == "__main__":
    entry()
