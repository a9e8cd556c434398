-- @aigw/audit, migration 1: the audit records, their chain checkpoints, the migrations applied.
-- migrate() of @aigw/audit/postgres runs it in one transaction under an advisory lock, with
-- search_path set to the target schema, unless aigw_audit_migrations already lists the latest
-- version (then it changes nothing and needs no DDL rights). Every statement is idempotent:
-- running it again by hand (psql -f) changes nothing.
CREATE TABLE IF NOT EXISTS aigw_audit_migrations (
  version int PRIMARY KEY,
  applied_at timestamptz NOT NULL DEFAULT now()
);

-- One row per record. `line` is the sealed JSON text that verify recomputes the chain from;
-- the other columns are copied out of it for queries.
CREATE TABLE IF NOT EXISTS aigw_audit_log (
  instance_id text NOT NULL,
  seq bigint NOT NULL,
  time timestamptz,
  tenant text,
  request_id text,
  model text,
  status int,
  line text NOT NULL,
  PRIMARY KEY (instance_id, seq)
);
CREATE INDEX IF NOT EXISTS aigw_audit_log_time ON aigw_audit_log (time);
CREATE INDEX IF NOT EXISTS aigw_audit_log_tenant_time ON aigw_audit_log (tenant, time);
CREATE INDEX IF NOT EXISTS aigw_audit_log_request_id ON aigw_audit_log (request_id);

-- Chain heads, kept apart from the records so that deleting the newest records shows. `sig`
-- is the HMAC the log signed the checkpoint with: one cannot be made up without the key.
CREATE TABLE IF NOT EXISTS aigw_audit_checkpoints (
  instance_id text NOT NULL,
  seq bigint NOT NULL,
  mac text NOT NULL,
  time timestamptz NOT NULL,
  reason text NOT NULL,
  sig text NOT NULL,
  written_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (instance_id, seq, reason, mac)
);

INSERT INTO aigw_audit_migrations (version) VALUES (1) ON CONFLICT (version) DO NOTHING;
