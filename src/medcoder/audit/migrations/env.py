"""Alembic environment of the audit log: migrations run on the connection `medcoder.audit.store.migrate` passes."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
