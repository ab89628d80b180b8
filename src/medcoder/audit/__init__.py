"""The audit trail: an append-only, hash-chained log of every suggestion, review decision, attestation,
export and promotion, in a real database (SQLite by default, any SQLAlchemy URL such as PostgreSQL).

Compliance asks, for every code on every claim: what evidence the model found, what logic assigned the
code, and who verified it. Each event is one row (`entry.AuditEntry`); the database refuses UPDATE and
DELETE (triggers, created by the Alembic migration), and each row carries the hash of the one before it,
so `medcoder audit verify` finds the first entry that was changed, removed, inserted or moved even by
someone who dropped the triggers. No patient text is stored: notes and quoted evidence by SHA-256 only.
"""
