"""``python -m llmsim``: the simulator in the foreground (options: ``python -m llmsim --help``)."""

from llmsim.cli import sim

if __name__ == "__main__":
    sim(prog_name="llmsim")
