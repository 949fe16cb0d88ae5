"""The application layer: the command line and what it runs, over the core beside it.

The core (`ladsg_jax.data`, `models`, `vfl`, `defenses`, `attacks`, `metrics`, `config`) trains
and attacks; nothing in it imports from here. Here: the command line (`cli*`, `flags`), one
experiment function and its wrappers (`experiment`, `sweep`, `session`), the tables and figures
(`attack_table`, `table_config`, `table_render`, `gather`, `ranking`, `plots`), what a result
says of itself (`provenance`), the listings (`listing`, `describe`) and plugins (`plugins`).
Importing this package loads nothing heavy (`import ladsg_jax.app.cli` stays light).
"""
