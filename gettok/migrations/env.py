"""Alembic environment: runs migrations on the URL `gettok.db.alembic_config` set."""

from alembic import context
from sqlalchemy import text

from gettok.db import MIGRATION_LOCK_KEY, migration_engine
from gettok.models.schema import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """One transaction for the whole upgrade, taken under a lock, so that concurrent upgrades
    wait for each other and a killed one leaves the schema as it was."""
    engine = migration_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                transaction_per_migration=False,
                # Alembic treats SQLite's DDL as non-transactional and then commits after every
                # migration, releasing the write lock mid-upgrade: a waiting upgrader would read
                # that half-way version and apply the next migration twice. Our engine makes
                # SQLite's DDL transactional (`migration_engine`), so say so.
                transactional_ddl=True,
            )
            with context.begin_transaction():
                if connection.dialect.name == "postgresql":
                    # Held until commit: the next upgrader reads the version table after us.
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                    )
                context.run_migrations()
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
