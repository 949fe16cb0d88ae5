"""`python -m ladsg_jax ...`: the `ladsg-jax` command (`ladsg_jax.app.cli`)."""
from ladsg_jax.app.cli import run

if __name__ == "__main__":
    run()
