"""The audit log is hash-chained, and sign-in keeps count of failures (lockout, slowing, TOTP).

The audit log is hash-chained: each row carries its chain, its place there, the hash of the row
before it and its own hash, sealed by the database as the row is inserted (queues/store/chain.py
says how).

Triggers alone kept the log append-only until someone dropped them; the chains make any edit,
deletion or reordering visible to `outreach audit verify` afterwards, whoever did it. A chain's
head (`audit_chain`, one row per chain) is what each insert into it updates: on PostgreSQL its row
lock orders that chain's writers (held to commit, so a rolled-back insert leaves no gap), on SQLite
the file's write lock already does. PostgreSQL keeps 32 chains, a connection's rows going to chain
`1 + pg_backend_pid() % 32`: with one head, every claim waited for the claim before it to commit
(50 claimers: 0.78x the bare dequeue, p99 1.77x). SQLite keeps one. Rows already in the log are
sealed here into chain 1, in id order.

Users gain their failures in a row, a lockout time and an optional TOTP secret; `sign_in_sources`
counts failures per place for the slowing (queues.auth). Agent states gain the console's last
presence beat, so a console that died shows its agent offline within a lease.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

from queues.store.chain import GENESIS, POSTGRES_CHAINS, chain_count, chain_hash

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_PG_AT = "to_char({col}, 'YYYY-MM-DD HH24:MI:SS.US')"

_PG_FUNCTIONS = (
    # queues/store/chain.py's _field and chain_hash, in SQL (verify recomputes them in Python).
    "CREATE FUNCTION audit_chain_field(v text) RETURNS text LANGUAGE sql IMMUTABLE AS "
    "$$ SELECT CASE WHEN v IS NULL THEN 'N' ELSE length(v)::text || ':' || v END $$",
    # STABLE, as convert_to is: an IMMUTABLE SQL function over a STABLE one is never inlined, and
    # called as a function it cost the seal ~4x its inlined time (per insert, 50 claimers: the
    # throughput the seal took was this, not the head's lock).
    "CREATE FUNCTION audit_chain_hash(row_id bigint, seq bigint, at text, user_id bigint, "
    "action text, patient_id bigint, detail text, prev_hash text) RETURNS text "
    "LANGUAGE sql STABLE AS $$ SELECT encode(sha256(convert_to("
    "audit_chain_field(row_id::text) || audit_chain_field(seq::text) || audit_chain_field(at) "
    "|| audit_chain_field(user_id::text) || audit_chain_field(action) "
    "|| audit_chain_field(patient_id::text) || audit_chain_field(detail) "
    "|| audit_chain_field(prev_hash), 'UTF8')), 'hex') $$",
    # One statement: the head's row lock (to commit) orders the writers of its chain, which is
    # the connection's (queues.store.chain.chain_of_backend). Whatever the writer put in the
    # chain columns is overwritten; with the head gone they are left empty (verify says so).
    "CREATE FUNCTION audit_events_seal() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "UPDATE audit_chain AS c SET prev_hash = c.hash, seq = c.seq + 1, "
    "hash = audit_chain_hash(NEW.id, c.seq + 1, "
    + _PG_AT.format(col="NEW.at")
    + ", NEW.user_id, NEW.action, NEW.patient_id, NEW.detail::text, c.hash) "
    f"WHERE c.id = 1 + pg_backend_pid() % {POSTGRES_CHAINS} "
    "RETURNING c.id, c.seq, c.prev_hash, c.hash "
    "INTO NEW.chain, NEW.seq, NEW.prev_hash, NEW.hash; "
    "RETURN NEW; END $$",
)


def _sqlite_triggers() -> None:
    op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
    # A sealed row never changes; the seal itself (below) is the one update a new row gets.
    op.execute(
        "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
        "WHEN OLD.hash IS NOT NULL "
        "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
    )
    op.execute(
        "CREATE TRIGGER audit_events_seal AFTER INSERT ON audit_events BEGIN "
        "UPDATE audit_chain SET prev_hash = hash, seq = seq + 1, hash = audit_chain_hash("
        "NEW.id, seq + 1, NEW.at, NEW.user_id, NEW.action, NEW.patient_id, NEW.detail, hash) "
        "WHERE id = 1; "
        "UPDATE audit_events SET (chain, seq, prev_hash, hash) = "
        "(SELECT id, seq, prev_hash, hash FROM audit_chain WHERE id = 1) WHERE id = NEW.id; END"
    )


def _sign_in_upgrade() -> None:
    op.add_column(
        "users",
        sa.Column("failed_sign_ins", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column("users", sa.Column("locked_until", sa.DateTime(), nullable=True))
    op.add_column("users", sa.Column("totp_secret", sa.String(64), nullable=True))
    op.add_column("users", sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
    op.add_column("agent_states", sa.Column("last_seen_at", sa.DateTime(), nullable=True))
    op.create_table(
        "sign_in_sources",
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_sign_in_sources")),
    )


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    _sign_in_upgrade()
    op.add_column("audit_events", sa.Column("chain", sa.SmallInteger(), nullable=True))
    op.add_column("audit_events", sa.Column("seq", sa.BigInteger(), nullable=True))
    op.add_column("audit_events", sa.Column("prev_hash", sa.String(64), nullable=True))
    op.add_column("audit_events", sa.Column("hash", sa.String(64), nullable=True))
    op.create_index("uq_audit_events_chain_seq", "audit_events", ["chain", "seq"], unique=True)
    op.create_table(
        "audit_chain",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("base_seq", sa.BigInteger(), nullable=False),
        sa.Column("base_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain")),
    )

    # Seal the rows already there into chain 1, oldest first.
    at = _PG_AT.format(col="at") if postgres else "at"
    detail = "detail::text" if postgres else "detail"
    rows = bind.execute(
        sa.text(
            f"SELECT id, {at}, user_id, action, patient_id, {detail} FROM audit_events ORDER BY id"
        )
    ).all()
    if postgres:
        op.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
    prev, seq, sealed = GENESIS, 0, []
    for row_id, row_at, user_id, action, patient_id, row_detail in rows:
        seq += 1
        digest = chain_hash(row_id, seq, row_at, user_id, action, patient_id, row_detail, prev)
        sealed.append({"id": row_id, "chain": 1, "seq": seq, "prev": prev, "hash": digest})
        prev = digest
    if sealed:
        bind.execute(
            sa.text(
                "UPDATE audit_events SET chain = :chain, seq = :seq, prev_hash = :prev, "
                "hash = :hash WHERE id = :id"
            ),
            sealed,
        )
    heads = [
        {"id": k, "seq": 0, "prev": GENESIS, "hash": GENESIS, "genesis": GENESIS}
        for k in range(1, chain_count(bind.dialect.name) + 1)
    ]
    heads[0].update(seq=seq, prev=sealed[-1]["prev"] if sealed else GENESIS, hash=prev)
    bind.execute(
        sa.text(
            "INSERT INTO audit_chain (id, seq, prev_hash, hash, base_seq, base_hash) "
            "VALUES (:id, :seq, :prev, :hash, 0, :genesis)"
        ),
        heads,
    )
    if postgres:
        op.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")
        for statement in _PG_FUNCTIONS:
            op.execute(statement)
        op.execute(
            "CREATE TRIGGER audit_events_seal BEFORE INSERT ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION audit_events_seal()"
        )
        # The heads are updated by every audited action, never deleted.
        op.execute(
            "CREATE FUNCTION audit_chain_keep() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit_chain keeps its rows'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_chain_keep BEFORE DELETE ON audit_chain "
            "FOR EACH ROW EXECUTE FUNCTION audit_chain_keep()"
        )
    else:
        _sqlite_triggers()
        op.execute(
            "CREATE TRIGGER audit_chain_keep BEFORE DELETE ON audit_chain "
            "BEGIN SELECT RAISE(ABORT, 'audit_chain keeps its rows'); END"
        )


def downgrade() -> None:
    bind = op.get_bind()
    op.drop_table("sign_in_sources")
    op.execute("ALTER TABLE agent_states DROP COLUMN last_seen_at")
    for column in ("totp_last_step", "totp_secret", "locked_until", "failed_sign_ins"):
        op.execute(f"ALTER TABLE users DROP COLUMN {column}")
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_seal ON audit_events")
        op.execute("DROP TRIGGER IF EXISTS audit_chain_keep ON audit_chain")
        for name in (
            "audit_events_seal()",
            "audit_chain_keep()",
            "audit_chain_hash(bigint, bigint, text, bigint, text, bigint, text, text)",
            "audit_chain_field(text)",
        ):
            op.execute(f"DROP FUNCTION IF EXISTS {name}")
    else:
        for name in ("audit_events_seal", "audit_chain_keep", "audit_events_no_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute(
            "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
            "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
        )
    op.drop_table("audit_chain")
    op.drop_index("uq_audit_events_chain_seq", table_name="audit_events")
    # Native DROP COLUMN (SQLite 3.35+): a batch rebuild would lose the table's triggers.
    for column in ("hash", "prev_hash", "seq", "chain"):
        op.execute(f"ALTER TABLE audit_events DROP COLUMN {column}")
