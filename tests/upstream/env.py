"""env.py for the upstream histories of tests/it/upstream.rs.

Ours, not the application's: Open WebUI's env.py imports the whole app (its
settings, its models, SSL helpers) and conda-store's imports its ORM, only to
set `target_metadata` for autogenerate. Running migrations needs none of that.
This keeps what matters for the schema exactly as the upstream env.py files
have it: a plain `context.configure(connection=...)` (no `render_as_batch`;
the revision files use `batch_alter_table` where they need it) and the
database URL from `DATABASE_URL` when set, else `sqlalchemy.url`.

The revision files come from the package (alembic.ini's `version_locations`);
imports they make of their own package (`open_webui.migrations.util`) or of
the app (`open_webui.internal.db.JSONField`) resolve through
`prepend_sys_path`: the unpacked package and tests/upstream/shims.
"""

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

DATABASE_URL = os.environ.get("DATABASE_URL")
if DATABASE_URL:
    config.set_main_option("sqlalchemy.url", DATABASE_URL.replace("%", "%%"))


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=None,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=None)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
